"""A minimal Django site for notify_throughput.py: django-papay's notify view next to a bare one-row view."""
