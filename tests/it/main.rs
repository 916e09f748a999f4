//! depot's integration tests, one binary: the HTTP suites on every store pair, the store
//! conformance suites, real processes (`depot serve`, push/pull, the Lambda binaries, python-gitlab)
//! and the SAM template. One binary links the AWS SDK once and starts DynamoDB Local once; a new
//! suite is a module here (a new `tests/*.rs` would be a second binary linking it all again).

#[macro_use]
mod support;

mod admin_init;
mod billing_model;
mod blob_conformance;
mod browser_ui;
mod checked_uploads;
mod checksums;
mod cleanup_policies;
mod cli;
mod cli_push_pull;
mod download_counts;
mod download_races;
mod durability;
mod dynamo_ids;
mod events;
mod faults;
mod http_downloads;
mod http_generic;
mod http_graphql;
mod http_packages;
mod http_people;
mod http_uploads;
mod identity_cache;
mod identity_conformance;
mod inline_files;
mod lambda_events;
mod lambda_watch;
mod latest;
mod list_races;
mod list_totals;
mod manifests;
mod meta_conformance;
mod metrics;
mod oidc_verify;
mod protection_rules;
mod purge_costs;
mod purge_queue;
mod request_costs;
mod request_ids;
mod safety;
mod template;
mod told_parts;
mod trusted_publishing;
mod upload_guards;
mod upstream_jobs;
mod web_ui;
mod webhooks;
