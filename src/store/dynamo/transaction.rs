//! Write transactions whose items are known by role: each item is pushed with a role (the
//! caller's enum), and a cancellation says which roles' conditions failed, so no caller ever
//! counts positions in DynamoDB's list of cancellation reasons.

use super::DynamoMetaStore;
use super::keys::Key;
use super::limits::TRANSACTION_ITEMS;
use super::schema::Item;
use crate::store::aws::sdk_failure;
use crate::store::{StoreError, StoreResult};
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::builders::UpdateBuilder;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update,
};

/// The condition that an item is new: nothing is stored under its key yet.
pub const ITEM_IS_NEW: &str = "attribute_not_exists(PK)";

/// A condition on one item, with the values its expression names.
pub struct Condition {
    expression: String,
    values: Item,
}

impl Condition {
    pub fn new(expression: impl Into<String>) -> Self {
        Condition {
            expression: expression.into(),
            values: Item::new(),
        }
    }

    /// Nothing is stored under the item's key yet.
    pub fn item_is_new() -> Self {
        Condition::new(ITEM_IS_NEW)
    }

    pub fn value(mut self, name: &str, value: AttributeValue) -> Self {
        self.values.insert(name.into(), value);
        self
    }

    /// The values, or `None` when there are none (DynamoDB refuses an empty map).
    fn values(&self) -> Option<Item> {
        (!self.values.is_empty()).then(|| self.values.clone())
    }
}

/// The items of one transaction (at most [`TRANSACTION_ITEMS`]), each with its role.
pub struct Transaction<R> {
    table: String,
    items: Vec<TransactWriteItem>,
    roles: Vec<R>,
}

impl<R: Copy + PartialEq> Transaction<R> {
    pub fn new(table: &str) -> Self {
        Transaction {
            table: table.to_string(),
            items: Vec::new(),
            roles: Vec::new(),
        }
    }

    fn push(&mut self, role: R, item: TransactWriteItem) {
        debug_assert!(
            self.items.len() < TRANSACTION_ITEMS,
            "transaction too large"
        );
        self.items.push(item);
        self.roles.push(role);
    }

    /// Put a whole item, where `condition` holds.
    pub fn put(&mut self, role: R, item: Item, condition: Option<Condition>) -> StoreResult<()> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.as_ref().map(|c| c.expression.clone()))
            .set_expression_attribute_values(condition.as_ref().and_then(Condition::values))
            .build()
            .map_err(StoreError::backend)?;
        self.push(role, TransactWriteItem::builder().put(put).build());
        Ok(())
    }

    /// Update the item at `key` as `build` says (expression, condition and their values).
    pub fn update(
        &mut self,
        role: R,
        key: &Key,
        build: impl FnOnce(UpdateBuilder) -> UpdateBuilder,
    ) -> StoreResult<()> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key.item()));
        let update = build(update).build().map_err(StoreError::backend)?;
        self.push(role, TransactWriteItem::builder().update(update).build());
        Ok(())
    }

    /// Write nothing at `key`, but hold the transaction to `condition` there.
    pub fn check(&mut self, role: R, key: &Key, condition: Condition) -> StoreResult<()> {
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .condition_expression(condition.expression.clone())
            .set_expression_attribute_values(condition.values())
            .build()
            .map_err(StoreError::backend)?;
        self.push(
            role,
            TransactWriteItem::builder().condition_check(check).build(),
        );
        Ok(())
    }

    /// Delete the item at `key`, where `condition` holds.
    pub fn delete(&mut self, role: R, key: &Key, condition: Option<Condition>) -> StoreResult<()> {
        let delete = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key.item()))
            .set_condition_expression(condition.as_ref().map(|c| c.expression.clone()))
            .set_expression_attribute_values(condition.as_ref().and_then(Condition::values))
            .build()
            .map_err(StoreError::backend)?;
        self.push(role, TransactWriteItem::builder().delete(delete).build());
        Ok(())
    }
}

/// A transaction DynamoDB cancelled: nothing was written.
pub struct Cancelled<R> {
    /// The roles of the items whose condition failed; none when it was cancelled for another
    /// reason (a conflict with a concurrent transaction, throttling).
    failed: Vec<R>,
    source: SdkError<TransactWriteItemsError>,
}

impl<R: PartialEq> Cancelled<R> {
    /// Did the condition of the item with `role` fail?
    pub fn failed(&self, role: R) -> bool {
        self.failed.contains(&role)
    }

    /// Did any condition fail (rather than the transaction conflicting with another)?
    pub fn any_condition_failed(&self) -> bool {
        !self.failed.is_empty()
    }

    /// The cancellation as a store failure, for callers with nothing better to say: a
    /// transaction cancelled for no failed condition conflicted with another or was throttled,
    /// which trying again later may cure.
    pub fn into_error(self) -> StoreError {
        if self.failed.is_empty() {
            StoreError::Unavailable {
                operation: "TransactWriteItems".into(),
                source: Box::new(self.source),
            }
        } else {
            StoreError::backend(self.source)
        }
    }
}

impl DynamoMetaStore {
    pub(super) fn transaction<R: Copy + PartialEq>(&self) -> Transaction<R> {
        Transaction::new(&self.table)
    }

    /// Write the transaction's items all or nothing. `Ok(Err(_))` when DynamoDB cancelled it,
    /// saying which roles' conditions failed; `Err` for any other failure.
    pub(super) async fn run<R: Copy + PartialEq>(
        &self,
        tx: Transaction<R>,
    ) -> StoreResult<Result<(), Cancelled<R>>> {
        let Transaction { items, roles, .. } = tx;
        let e = match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => return Ok(Ok(())),
            Err(e) => e,
        };
        let Some(TransactWriteItemsError::TransactionCanceledException(c)) = e.as_service_error()
        else {
            return Err(sdk_failure(e));
        };
        // Reasons come in the order of the items: one per item, "None" where nothing failed.
        let failed = c
            .cancellation_reasons()
            .iter()
            .zip(&roles)
            .filter(|(reason, _)| reason.code() == Some("ConditionalCheckFailed"))
            .map(|(_, role)| *role)
            .collect();
        Ok(Err(Cancelled { failed, source: e }))
    }
}
