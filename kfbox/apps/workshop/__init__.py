"""Workshops: one host serves a class, a verified sandbox per seat (`kfbox workshop`)."""
