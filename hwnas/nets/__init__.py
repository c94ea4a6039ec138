"""PyTorch networks of the search spaces (imported lazily: importing ``hwnas`` never imports torch)."""
