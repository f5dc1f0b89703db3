"""Integrations with web frameworks: ``jobhandler.contrib.django`` (a Django tasks backend)."""
