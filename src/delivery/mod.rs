//! Getting events out: signed webhooks from `depot serve` (`webhooks`), and EventBridge from
//! the table's stream on AWS (`eventbridge`). Both send the event's own JSON
//! (`infra/event.schema.json`), at least once; receivers drop repeats by its `id`.

pub mod eventbridge;
pub mod webhooks;
