"""Serving an exported MMIN over TF Serving's REST predict protocol with KServe's model server."""
