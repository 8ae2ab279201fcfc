"""The scheduled health check: silent cameras and device health."""
