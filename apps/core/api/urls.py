"""Core API routes (none yet beyond the probes, which live at the root)."""

urlpatterns: list = []
