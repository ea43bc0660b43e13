"""The Pulumi program that deploys the router: shared parts, one package per stack."""
