//! What the two AWS stores share: how their SDK clients wait and retry ([`AwsPatience`] as the
//! SDK's settings), and which SDK failures mean "the service is unavailable, try again later"
//! ([`sdk_failure`]) rather than a fault of depot's own.

use super::StoreError;
use crate::config::AwsPatience;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

/// Error codes AWS services answer when they are throttling, overloaded, or failed on their
/// side: the SDK retries them (its own throttling and transient lists, and the 5xx codes of
/// DynamoDB and S3), and once its attempts are spent they mean "try again later".
const UNAVAILABLE_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalServerError",
    "InternalError",
    "ServiceUnavailable",
];

/// The SDK's retry settings: standard mode, `max_attempts` attempts, jittered exponential
/// backoff from `initial_backoff`.
pub(crate) fn retry_config(patience: &AwsPatience) -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(patience.max_attempts)
        .with_initial_backoff(patience.initial_backoff)
}

/// DynamoDB's time limits: connecting, and each attempt as a whole (its requests and answers
/// are small).
pub(crate) fn dynamodb_timeouts(patience: &AwsPatience) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(patience.connect_timeout)
        .operation_attempt_timeout(patience.dynamodb_attempt_timeout)
        .build()
}

/// S3's time limits: connecting, and the wait for an attempt's answer to begin (its body is
/// sent within it). Not the attempt as a whole: a large server-side copy or download may take
/// longer, and S3 keeps such a connection busy while it works.
pub(crate) fn s3_timeouts(patience: &AwsPatience) -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(patience.connect_timeout)
        .read_timeout(patience.s3_attempt_timeout)
        .build()
}

/// A failed SDK request as a store error: `Unavailable` when the service throttled, failed on
/// its side (5xx), timed out, or the connection failed or broke (the request may or may not
/// have taken effect), once the SDK's own retries are spent; `Backend` otherwise.
pub(crate) fn sdk_failure<E>(e: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    if is_unavailable(&e) {
        StoreError::Unavailable {
            operation: operation_of::<E>(),
            source: Box::new(e),
        }
    } else {
        StoreError::backend(e)
    }
}

fn is_unavailable<E: ProvideErrorMetadata>(e: &SdkError<E, HttpResponse>) -> bool {
    match e {
        SdkError::TimeoutError(_) | SdkError::ResponseError(_) => true,
        SdkError::DispatchFailure(d) => !d.is_user(),
        SdkError::ServiceError(s) => {
            s.raw().status().is_server_error()
                || s.err()
                    .code()
                    .is_some_and(|c| UNAVAILABLE_CODES.contains(&c))
        }
        _ => false,
    }
}

/// The operation an SDK error type belongs to (`TransactWriteItemsError` → `TransactWriteItems`).
fn operation_of<E>() -> String {
    let name = std::any::type_name::<E>();
    let name = name.rsplit("::").next().unwrap_or(name);
    name.strip_suffix("Error").unwrap_or(name).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::types::error::ProvisionedThroughputExceededException;
    use aws_sdk_s3::operation::put_object::PutObjectError;

    fn response(status: u16) -> HttpResponse {
        HttpResponse::new(
            status.try_into().unwrap(),
            aws_sdk_s3::primitives::SdkBody::empty(),
        )
    }

    #[test]
    fn throttling_5xx_and_timeouts_are_unavailable() {
        let throttled = GetItemError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder()
                .message("slow down")
                .meta(
                    aws_sdk_dynamodb::error::ErrorMetadata::builder()
                        .code("ProvisionedThroughputExceededException")
                        .build(),
                )
                .build(),
        );
        let e = sdk_failure(SdkError::service_error(throttled, response(400)));
        assert!(
            matches!(&e, StoreError::Unavailable { operation, .. } if operation == "GetItem"),
            "{e:?}"
        );
        let slow_down = PutObjectError::generic(
            aws_sdk_s3::error::ErrorMetadata::builder()
                .code("SlowDown")
                .build(),
        );
        let e = sdk_failure(SdkError::service_error(slow_down, response(503)));
        assert!(
            matches!(&e, StoreError::Unavailable { operation, .. } if operation == "PutObject"),
            "{e:?}"
        );
        let internal = PutObjectError::generic(
            aws_sdk_s3::error::ErrorMetadata::builder()
                .code("InternalError")
                .build(),
        );
        let e = sdk_failure(SdkError::service_error(internal, response(500)));
        assert!(matches!(e, StoreError::Unavailable { .. }), "{e:?}");
        let timeout = SdkError::<GetItemError, HttpResponse>::timeout_error("attempt timeout");
        assert!(matches!(
            sdk_failure(timeout),
            StoreError::Unavailable { .. }
        ));
    }

    #[test]
    fn other_failures_stay_backend_failures() {
        let denied = PutObjectError::generic(
            aws_sdk_s3::error::ErrorMetadata::builder()
                .code("AccessDenied")
                .build(),
        );
        let e = sdk_failure(SdkError::service_error(denied, response(403)));
        assert!(matches!(e, StoreError::Backend(_)), "{e:?}");
        let built = SdkError::<GetItemError, HttpResponse>::construction_failure("bad input");
        assert!(matches!(sdk_failure(built), StoreError::Backend(_)));
    }
}

/// Times every SDK call (from its start to its outcome, retries included) for the request
/// being served ([`crate::telemetry::store_call`]): the store latency its metrics report.
#[derive(Debug, Default)]
pub(crate) struct StoreTiming;

/// When the call began.
#[derive(Debug, Clone, Copy)]
struct Began(std::time::Instant);

impl aws_smithy_types::config_bag::Storable for Began {
    type Storer = aws_smithy_types::config_bag::StoreReplace<Self>;
}

impl aws_sdk_dynamodb::config::Intercept for StoreTiming {
    fn name(&self) -> &'static str {
        "StoreTiming"
    }

    fn read_before_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::BeforeSerializationInterceptorContextRef<'_>,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        cfg.interceptor_state()
            .store_put(Began(std::time::Instant::now()));
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &aws_smithy_runtime_api::client::interceptors::context::FinalizerInterceptorContextRef<'_>,
        _components: &aws_sdk_dynamodb::config::RuntimeComponents,
        cfg: &mut aws_sdk_dynamodb::config::ConfigBag,
    ) -> Result<(), aws_smithy_runtime_api::box_error::BoxError> {
        if let Some(Began(at)) = cfg.load::<Began>() {
            crate::telemetry::store_call(at.elapsed());
        }
        Ok(())
    }
}
