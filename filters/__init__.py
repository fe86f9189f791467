"""Selection policies over score tables: subsets and tags."""
