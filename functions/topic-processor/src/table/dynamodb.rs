//! The idempotency table in DynamoDB (`IDEMPOTENCY_TABLE`): each of the table's operations as one request, conditional where two invocations could race.

use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValuesOnConditionCheckFailure};
use intercom_webhook::dispatch::{BoxFuture, StepState};

use super::{
    COMPLETED, Finished, INPROGRESS, LockItem, Newest, Store, StoreError, Taken, attribute,
};

/// The idempotency table in DynamoDB (`IDEMPOTENCY_TABLE`, a name or an ARN).
#[derive(Debug, Clone)]
pub struct DynamoDbStore {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoDbStore {
    pub fn new(client: aws_sdk_dynamodb::Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
        }
    }
}

/// Powertools' condition: no item, an expired item, or an `INPROGRESS`
/// lock whose holder's invocation has ended.
const FREE: &str = "attribute_not_exists(#id) OR #expiration < :now \
    OR (#status = :inprogress AND attribute_exists(#in_progress_expiration) \
    AND #in_progress_expiration < :now_ms)";

/// The lock is still the caller's.
const HELD: &str = "#status = :inprogress AND #owner = :owner";

/// An object's newest may be raised to `:created`: no item, an expired
/// one, or one that names no later notification.
const NOT_NEWER: &str = "attribute_not_exists(#id) OR #expiration < :now OR #newest <= :created";

fn error(e: impl std::error::Error + 'static) -> StoreError {
    StoreError(DisplayErrorContext(e).to_string())
}

/// Whether `e` is DynamoDB refusing a write for its condition.
fn condition_failed<E: ProvideErrorMetadata, R>(e: &SdkError<E, R>) -> bool {
    e.as_service_error()
        .is_some_and(|e| e.code() == Some("ConditionalCheckFailedException"))
}

fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn text(s: &str) -> AttributeValue {
    AttributeValue::S(s.to_owned())
}

type Fields = std::collections::HashMap<String, AttributeValue>;

/// The whole number attribute `name` of an item, if it has one.
fn integer(fields: &Fields, name: &str) -> Option<i64> {
    fields
        .get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|n| n.parse::<i64>().ok())
}

fn item(fields: &Fields) -> Option<LockItem> {
    let text = |name: &str| fields.get(name).and_then(|v| v.as_s().ok()).cloned();
    let int = |name: &str| integer(fields, name);
    Some(LockItem {
        id: text(attribute::ID)?,
        status: text(attribute::STATUS)?,
        expiration: int(attribute::EXPIRATION).unwrap_or(i64::MAX),
        in_progress_expiration: int(attribute::IN_PROGRESS_EXPIRATION),
        validation: text(attribute::VALIDATION),
        owner: text(attribute::OWNER),
    })
}

/// The object item a refused `advance` met; when the table did not say
/// (it always does, with `ALL_OLD`), a notification newer than any.
fn newest_of(fields: Option<&Fields>) -> Newest {
    let int = |name: &str| fields.and_then(|f| integer(f, name));
    Newest {
        created_at: int(attribute::NEWEST_CREATED_AT).unwrap_or(i64::MAX),
        notification_id: fields
            .and_then(|f| f.get(attribute::NEWEST_NOTIFICATION_ID))
            .and_then(|v| v.as_s().ok())
            .cloned(),
        expiration: int(attribute::EXPIRATION).unwrap_or(i64::MAX),
    }
}

impl Store for DynamoDbStore {
    fn take(&self, lock: LockItem, now_ms: i64) -> BoxFuture<Result<Taken, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            let mut request = store
                .client
                .put_item()
                .table_name(&store.table)
                .item(attribute::ID, text(&lock.id))
                .item(attribute::STATUS, text(&lock.status))
                .item(attribute::EXPIRATION, number(lock.expiration))
                .condition_expression(FREE)
                .expression_attribute_names("#id", attribute::ID)
                .expression_attribute_names("#expiration", attribute::EXPIRATION)
                .expression_attribute_names("#status", attribute::STATUS)
                .expression_attribute_names(
                    "#in_progress_expiration",
                    attribute::IN_PROGRESS_EXPIRATION,
                )
                .expression_attribute_values(":now", number(now_ms / 1000))
                .expression_attribute_values(":now_ms", number(now_ms))
                .expression_attribute_values(":inprogress", text(INPROGRESS))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            for (name, value) in [
                (
                    attribute::IN_PROGRESS_EXPIRATION,
                    lock.in_progress_expiration.map(number),
                ),
                (attribute::VALIDATION, lock.validation.as_deref().map(text)),
                (attribute::OWNER, lock.owner.as_deref().map(text)),
            ] {
                if let Some(value) = value {
                    request = request.item(name, value);
                }
            }
            match request.send().await {
                Ok(_) => Ok(Taken::Yes),
                Err(e) => match e.as_service_error() {
                    Some(PutItemError::ConditionalCheckFailedException(refused)) => {
                        Ok(Taken::Refused(refused.item().and_then(item)))
                    }
                    _ => Err(error(e)),
                },
            }
        })
    }

    fn complete(
        &self,
        id: String,
        owner: String,
        expiration: i64,
    ) -> BoxFuture<Result<Finished, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            let updated = store
                .client
                .update_item()
                .table_name(&store.table)
                .key(attribute::ID, text(&id))
                .update_expression("SET #status = :completed, #expiration = :expiration")
                .condition_expression(HELD)
                .expression_attribute_names("#status", attribute::STATUS)
                .expression_attribute_names("#expiration", attribute::EXPIRATION)
                .expression_attribute_names("#owner", attribute::OWNER)
                .expression_attribute_values(":completed", text(COMPLETED))
                .expression_attribute_values(":expiration", number(expiration))
                .expression_attribute_values(":inprogress", text(INPROGRESS))
                .expression_attribute_values(":owner", text(&owner))
                .send()
                .await;
            match updated {
                Ok(_) => Ok(Finished::Done),
                Err(e) if condition_failed(&e) => Ok(Finished::NotOwner),
                Err(e) => Err(error(e)),
            }
        })
    }

    fn release(&self, id: String, owner: String) -> BoxFuture<Result<Finished, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            let deleted = store
                .client
                .delete_item()
                .table_name(&store.table)
                .key(attribute::ID, text(&id))
                .condition_expression(HELD)
                .expression_attribute_names("#status", attribute::STATUS)
                .expression_attribute_names("#owner", attribute::OWNER)
                .expression_attribute_values(":inprogress", text(INPROGRESS))
                .expression_attribute_values(":owner", text(&owner))
                .send()
                .await;
            match deleted {
                Ok(_) => Ok(Finished::Done),
                Err(e) if condition_failed(&e) => Ok(Finished::NotOwner),
                Err(e) => Err(error(e)),
            }
        })
    }

    fn advance(
        &self,
        id: String,
        newest: Newest,
        now_ms: i64,
    ) -> BoxFuture<Result<Option<Newest>, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            let update = match newest.notification_id {
                Some(_) => {
                    "SET #newest = :created, #newest_id = :newest_id, #expiration = :expiration"
                }
                None => "SET #newest = :created, #expiration = :expiration REMOVE #newest_id",
            };
            let mut request = store
                .client
                .update_item()
                .table_name(&store.table)
                .key(attribute::ID, text(&id))
                .update_expression(update)
                .condition_expression(NOT_NEWER)
                .expression_attribute_names("#id", attribute::ID)
                .expression_attribute_names("#newest", attribute::NEWEST_CREATED_AT)
                .expression_attribute_names("#newest_id", attribute::NEWEST_NOTIFICATION_ID)
                .expression_attribute_names("#expiration", attribute::EXPIRATION)
                .expression_attribute_values(":created", number(newest.created_at))
                .expression_attribute_values(":expiration", number(newest.expiration))
                .expression_attribute_values(":now", number(now_ms / 1000))
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            if let Some(newest_id) = &newest.notification_id {
                request = request.expression_attribute_values(":newest_id", text(newest_id));
            }
            match request.send().await {
                Ok(_) => Ok(None),
                Err(e) => match e.as_service_error() {
                    Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                        Ok(Some(newest_of(refused.item())))
                    }
                    _ => Err(error(e)),
                },
            }
        })
    }

    fn step(&self, id: String, now_s: i64) -> BoxFuture<Result<Option<StepState>, StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            // Strongly consistent: a step recorded by the invocation
            // before must be seen by its retry.
            let read = store
                .client
                .get_item()
                .table_name(&store.table)
                .key(attribute::ID, text(&id))
                .consistent_read(true)
                .send()
                .await
                .map_err(error)?;
            let Some(fields) = read.item() else {
                return Ok(None);
            };
            let expiration = integer(fields, attribute::EXPIRATION).unwrap_or(i64::MAX);
            if expiration < now_s {
                return Ok(None);
            }
            let completed = fields
                .get(attribute::STATUS)
                .and_then(|v| v.as_s().ok())
                .is_some_and(|status| status == COMPLETED);
            let result = fields
                .get(attribute::STEP_RESULT)
                .and_then(|v| v.as_s().ok());
            Ok(Some(match (completed, result) {
                (true, Some(result)) => StepState::Completed(result.clone()),
                // Started, or (written by an earlier version) completed
                // without its result: runs again, resumed.
                _ => StepState::Started,
            }))
        })
    }

    fn put_step(
        &self,
        id: String,
        state: StepState,
        expiration: i64,
    ) -> BoxFuture<Result<(), StoreError>> {
        let store = self.clone();
        Box::pin(async move {
            let request = store
                .client
                .put_item()
                .table_name(&store.table)
                .item(attribute::ID, text(&id))
                .item(attribute::EXPIRATION, number(expiration));
            let request = match state {
                StepState::Started => request.item(attribute::STATUS, text(INPROGRESS)),
                StepState::Completed(json) => request
                    .item(attribute::STATUS, text(COMPLETED))
                    .item(attribute::STEP_RESULT, text(&json)),
            };
            request.send().await.map_err(error)?;
            Ok(())
        })
    }
}
