"""Components every stack composes: wiring, image, Bedrock profiles, cost alarms."""
