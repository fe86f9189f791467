"""Training-dynamics difficulty scorers.

Every scorer trains models on the data it scores through :mod:`curate.train` and
records what it needs on the training pass (callbacks, no second pass) where the
definition allows:

=================  =====================================================  ==============
name               score                                                   harder =
=================  =====================================================  ==============
loss               training loss, mean over epochs (or chosen epochs)      higher
el2n               ||softmax - onehot|| of the model at epoch ``epoch``   higher
grand              per-example gradient norm (``torch.func``) at ``epoch``  higher
forgetting         forgetting events (never learned = most forgettable)   higher
aum                area under the logit margin                             lower
cartography        confidence / variability / correctness over epochs     lower conf.
prototypicality    distance to the nearest k-means centroid                higher
cv_loss            out-of-sample loss from K-fold cross-validation         higher
=================  =====================================================  ==============
"""

from scorers.dynamics.at_epoch import EL2N, GraNd
from scorers.dynamics.cv_loss import CVLoss
from scorers.dynamics.prototypicality import Prototypicality
from scorers.dynamics.recording import PresentationRecorder, ScoreAtEpochs
from scorers.dynamics.training_pass import AUM, Cartography, Forgetting, Loss

__all__ = ["AUM", "CVLoss", "Cartography", "EL2N", "Forgetting", "GraNd", "Loss",
           "PresentationRecorder", "Prototypicality", "ScoreAtEpochs"]
