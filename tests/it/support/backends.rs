//! The two kinds of store every suite runs on, and `on_every_backend!`: one test per case and
//! backend. A case is an `async fn case(subject: S)`; its parameter type `S` says what the
//! suite tests (a [`Backend`] for the HTTP suites, a store for the conformance suites) and
//! implements [`Subject`], which makes one on each backend.
#![allow(dead_code)]

use std::future::Future;

/// The store pairs every HTTP test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite + a directory (the embedded default).
    Local,
    /// DynamoDB (DynamoDB Local) + S3 (s3s-fs), as on AWS.
    Aws,
}

/// What a suite's cases run on, made fresh for each test on either backend.
pub trait Subject: Sized {
    /// On the embedded stores: SQLite and a directory.
    fn local() -> impl Future<Output = Self> + Send;
    /// On the AWS stores, emulated: DynamoDB Local and s3s-fs.
    fn aws() -> impl Future<Output = Self> + Send;
}

impl Subject for Backend {
    async fn local() -> Self {
        Backend::Local
    }

    async fn aws() -> Self {
        Backend::Aws
    }
}

/// Run `case` on a fresh local subject (the type is the case's parameter).
pub async fn on_local<S: Subject, F: Future<Output = ()>>(case: impl FnOnce(S) -> F) {
    case(S::local().await).await
}

/// Run `case` on a fresh AWS subject (the type is the case's parameter).
pub async fn on_aws<S: Subject, F: Future<Output = ()>>(case: impl FnOnce(S) -> F) {
    case(S::aws().await).await
}

/// For each listed `async fn case(subject: S)` of the calling module, where `S: Subject`:
/// `local::case` and `aws::case`, each a multi-threaded `#[tokio::test]` (cases shell out and
/// race requests, so they need more than one worker).
#[macro_export]
macro_rules! on_every_backend {
    ($($case:ident),* $(,)?) => {
        mod local {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    $crate::support::backends::on_local(super::$case).await
                }
            )*
        }
        mod aws {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    $crate::support::backends::on_aws(super::$case).await
                }
            )*
        }
    };
}
