"""The router's container image: an ECR repository and a build pushed to it.

One image serves every stack: arm64 (Graviton Lambda and Fargate cost ~20%
less than x86), built from `services/router/Dockerfile` with the repository
root as context so the build sees the workspace lockfile.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws
import pulumi_docker_build as docker_build

from infra.config import PROJECT_ROOT, KitConfig

DOCKERFILE = "services/router/Dockerfile"
KEEP_IMAGES = 10


@dataclass(frozen=True)
class RouterImageArgs:
    """Where the sources are, and whether `preview` builds too."""

    root: Path
    build_on_preview: bool
    tags: Mapping[str, str]
    # The large stack builds its Triton image with this component too.
    dockerfile: str = DOCKERFILE
    platform: docker_build.Platform = docker_build.Platform.LINUX_ARM64

    @classmethod
    def for_stack(cls, config: KitConfig) -> RouterImageArgs:
        """The router image every stack builds from this checkout."""
        return cls(
            root=PROJECT_ROOT,
            build_on_preview=config.image_build_on_preview,
            tags=dict(config.tags),
        )


class RouterImage(pulumi.ComponentResource):
    """An ECR repository holding the router image the stack runs."""

    repository: aws.ecr.Repository
    image_ref: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        args: RouterImageArgs,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("llmrouter:index:RouterImage", name, None, opts)
        self._name = name
        self._args = args

        self.repository = self._declare_repository()
        image = self._build_image()
        # Pin the digest: a re-pushed tag must not change what runs.
        self.image_ref = pulumi.Output.concat(
            self.repository.repository_url, "@", image.digest
        )

        self.register_outputs({"imageRef": self.image_ref})

    def _declare_repository(self) -> aws.ecr.Repository:
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            f"{self._name}-repo",
            image_scanning_configuration={"scan_on_push": True},
            encryption_configurations=[{"encryption_type": "AES256"}],
            # The stack re-pushes its tag on every change; the function and
            # the task definition pin the digest, not the tag.
            image_tag_mutability="MUTABLE",
            tags=dict(self._args.tags),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            f"{self._name}-repo-lifecycle",
            repository=repository.name,
            policy=json.dumps(
                {
                    "rules": [
                        {
                            "rulePriority": 1,
                            "description": f"Keep the last {KEEP_IMAGES} images.",
                            "selection": {
                                "tagStatus": "any",
                                "countType": "imageCountMoreThan",
                                "countNumber": KEEP_IMAGES,
                            },
                            "action": {"type": "expire"},
                        }
                    ]
                }
            ),
            opts=child,
        )
        return repository

    def _build_image(self) -> docker_build.Image:
        token = aws.ecr.get_authorization_token_output(
            registry_id=self.repository.registry_id,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        url = self.repository.repository_url
        # Relative paths keep the state the same on every machine that runs
        # the program (a laptop, CI), so a build is not replaced for its path.
        root = os.path.relpath(self._args.root)
        return docker_build.Image(
            f"{self._name}-image",
            context={"location": root},
            dockerfile={"location": os.path.join(root, self._args.dockerfile)},
            platforms=[self._args.platform],
            tags=[url.apply(lambda u: f"{u}:{pulumi.get_stack()}")],
            push=True,
            build_on_preview=self._args.build_on_preview,
            registries=[
                {
                    "address": url,
                    "username": token.user_name,
                    "password": token.password,
                }
            ],
            opts=pulumi.ResourceOptions(parent=self),
        )
