# -*- coding: utf-8 -*-
# Copyright: failsafe.datastores contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The variables the collection reads besides role options (those are in each role's
meta/argument_specs.yml): inventory variables and run-wide ones given with -e.

docs/inventory.md documents exactly these names (tests/unit/test_variables.py keeps them equal),
and the run_preflight action reports a -e variable with a collection prefix that is neither here
nor a role option, so a typo never passes silently.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# Per host, from the inventory.
INVENTORY_VARIABLES = (
    "failsafe_region",
    "failsafe_pg_host",
    "failsafe_pg_port",
    "failsafe_pg_user",
    "failsafe_pg_password",
    "failsafe_pg_db",
    "failsafe_pg_connect_timeout",
    "failsafe_pg_ssl_mode",
    "failsafe_pg_ca_cert",
    "failsafe_pg_replication_user",
    "failsafe_pg_replication_password",
    "failsafe_pg_data_dir",
    "failsafe_pg_config_dir",
    "failsafe_pg_service_name",
    "failsafe_pg_bin_dir",
    "failsafe_pg_log_file",
    "failsafe_pg_slot_name",
    "failsafe_pg_synchronous",
    "failsafe_pg_synchronous_method",
    # How the witness host reaches the node when not at failsafe_pg_host/port (network_partition).
    "failsafe_pg_witness_route",
    "failsafe_redis_host",
    "failsafe_redis_port",
    "failsafe_redis_user",
    "failsafe_redis_password",
    "failsafe_redis_tls",
    "failsafe_redis_ca_cert",
    "failsafe_redis_connect_timeout",
    "failsafe_redis_sentinel_password",
    "failsafe_redis_master_name",
    # A host of the dns group: one DNS provider (an RFC 2136 server or a Route 53 zone).
    "failsafe_dns_provider",
    "failsafe_dns_zone",
    "failsafe_dns_server",
    "failsafe_dns_port",
    "failsafe_dns_tsig_key_name",
    "failsafe_dns_tsig_key_secret",
    "failsafe_dns_tsig_algorithm",
    "failsafe_dns_protocol",
    "failsafe_dns_timeout",
    "failsafe_dns_nameservers",
    "failsafe_dns_records",
    "failsafe_route53_endpoint_url",
    "failsafe_route53_zone_id",
    "failsafe_route53_access_key",
    "failsafe_route53_secret_key",
    "failsafe_route53_session_token",
    "failsafe_route53_query_nameservers",
    # Redis hosts restored by restore.yml (docs/inventory.md, Backups).
    "failsafe_redis_start_command",
    # Hosts of the neo4j, qdrant and opensearch groups of the backup playbooks.
    "failsafe_neo4j_database",
    "failsafe_neo4j_admin",
    "failsafe_neo4j_stop_command",
    "failsafe_neo4j_start_command",
    "failsafe_qdrant_url",
    "failsafe_qdrant_api_key",
    "failsafe_qdrant_collections",
    "failsafe_opensearch_url",
    "failsafe_opensearch_user",
    "failsafe_opensearch_password",
    "failsafe_opensearch_indices",
    "failsafe_opensearch_repository",
    # Neo4j cluster recovery and maintenance, OpenSearch recovery (docs/neo4j.md, opensearch.md).
    "failsafe_neo4j_uri",
    "failsafe_neo4j_user",
    "failsafe_neo4j_password",
    "failsafe_neo4j_server_name",
    "failsafe_neo4j_k8s_namespace",
    "failsafe_neo4j_k8s_statefulset",
    "failsafe_neo4j_k8s_pvc",
    "failsafe_opensearch_k8s_namespace",
    "failsafe_opensearch_k8s_statefulset",
    # Hosts of the app group (role app_traffic; docs/inventory.md, Application).
    "failsafe_app_platform",
    "failsafe_app_program",
    "failsafe_app_health_url",
    "failsafe_app_journal",
    "failsafe_app_supervisor_config",
    "failsafe_app_supervisor_url",
    "failsafe_app_supervisor_username",
    "failsafe_app_supervisor_password",
    "failsafe_app_supervisorctl_path",
    "failsafe_app_k8s_namespace",
    "failsafe_app_k8s_deployment",
    "failsafe_app_replicas",
    "failsafe_app_k8s_kubeconfig",
    "failsafe_app_k8s_context",
    "failsafe_app_k8s_host",
    "failsafe_app_k8s_api_key",
    "failsafe_app_k8s_validate_certs",
)

# For a whole run: inventory group_vars or -e.
RUN_VARIABLES = (
    "failsafe_target_region",
    "failsafe_lock_backend",
    "failsafe_lock_path",
    "failsafe_lock_host",
    "failsafe_lock_ttl",
    "failsafe_lock_break",
    "failsafe_report_dir",
    # How the controller reaches Kubernetes for the Neo4j and OpenSearch recovery playbooks.
    "failsafe_k8s_kubeconfig",
    "failsafe_k8s_context",
    # Regional failover (docs/regional-failover.md): mode, RTO target, notifications.
    "failsafe_failover_mode",
    "failsafe_rto_seconds",
    "failsafe_notify_webhook_url",
    "failsafe_notify_slack_token",
    "failsafe_notify_slack_channel",
    # Backups (docs/inventory.md, "Backups"): the S3 store, where dump and upload run, history.
    "failsafe_s3_endpoint_url",
    "failsafe_s3_region",
    "failsafe_s3_bucket",
    "failsafe_s3_prefix",
    "failsafe_s3_access_key",
    "failsafe_s3_secret_key",
    "failsafe_s3_ca_cert",
    "failsafe_s3_sign_payload",
    "failsafe_backup_host",
    "failsafe_backup_history_host",
    "failsafe_backup_history_db",
)

# What the playbooks publish with set_stats (the run report's figures). An AWX workflow hands a
# job's set_stats to the jobs after it as extra vars (docs/awx.md): run_preflight takes them as
# known, so that they are not reported as variables nothing reads. failsafe_report_dir, which
# some roles publish too, is a run variable above. tests/unit/test_variables.py keeps this list
# equal to the set_stats keys of roles/ and playbooks/.
ARTIFACT_VARIABLES = (
    "failsafe_backup",
    "failsafe_backup_verify",
    "failsafe_crash_recovery",
    "failsafe_dns_failover",
    "failsafe_dr_drill",
    "failsafe_network_partition",
    "failsafe_postgresql_connection_exhaustion",
    "failsafe_postgresql_failover",
    "failsafe_postgresql_health",
    "failsafe_postgresql_replication_lag",
    "failsafe_postgresql_switchover",
    "failsafe_postgresql_unfence",
    "failsafe_recover_rows",
    "failsafe_redis_failover",
    "failsafe_restore",
    "failsafe_restore_integrity",
    "failsafe_run",
    "failsafe_status",
)

# Variables that choose what a run changes: a mistyped -e name close to one of these is refused,
# not only reported, because without it the run would pick a target by itself.
TARGET_SELECTING = (
    "failsafe_target_region",
    "postgresql_switchover_target",
    "postgresql_failover_target",
    "postgresql_rejoin_node",
    "postgresql_rejoin_primary",
    "postgresql_unfence_node",
    "redis_failover_target",
)

# Prefixes whose -e variables are checked: the collection's own and every role's.
COLLECTION_PREFIX = "failsafe_"
