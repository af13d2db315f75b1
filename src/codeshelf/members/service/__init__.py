"""The members domain's services: invitations, credentials, signing in, the team."""
