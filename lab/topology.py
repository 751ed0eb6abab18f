"""What the lab runs, in start order: one line per engine (see docs/lab.md, "Adding an engine").

Imports core and the component files; core never imports this module.
"""

from __future__ import annotations

from lab import app, bind, partition, postgresql, redis, route53_emulator, seaweedfs, sentinel
from lab.core import Lab, LabConfig, Registry

REGISTRY = Registry()
REGISTRY.add(postgresql.replicated_pair)  # postgresql: primary us-east, standby us-west
REGISTRY.add(postgresql.PostgresWitness.at("witness"))  # postgresql_witness: standalone
REGISTRY.add(redis.replicated_pair)  # redis: master us-east, replica us-west
REGISTRY.add(sentinel.sentinels)  # redis_sentinel: us-east, us-west, witness; quorum 2
REGISTRY.add(bind.bind_pair)  # bind: zone primary on site dns-primary, secondary on dns-secondary
REGISTRY.add(route53_emulator.Route53Emulator.at("route53-emulator"))  # route53_emulator
REGISTRY.add(seaweedfs.SeaweedS3.at("s3"))  # seaweedfs: S3 server of the backups, bucket backups
REGISTRY.add(app.AppWriter.in_each_region)  # app: supervisord + failsafe-writer; us-east writes
REGISTRY.add(partition.proxies)  # partition (optional): each region's edge proxy, cut and heal


def make_lab(config: LabConfig | None = None, registry: Registry = REGISTRY) -> Lab:
    """The lab of `config` (default: from FAILSAFE_LAB_* variables) with the registered components."""
    return Lab(config or LabConfig.from_env(), registry)
