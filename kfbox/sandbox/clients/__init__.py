"""Clients for the sandbox services, driven through their public APIs as a user's tools would."""
