"""DataTrove-compatible heuristic rule sets (Gopher, C4, FineWeb)."""
