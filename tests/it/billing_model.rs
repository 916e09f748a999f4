//! The bench's billing model (`benches/aws_costs/billing.rs`, compiled here so that its rules
//! are tested): a transaction's units from its items' images, index writes, item sizes.

#[path = "../../benches/aws_costs/billing.rs"]
#[allow(dead_code)]
mod billing;

use billing::{Index, item_size, kb_units, transaction_keys, transaction_units};
use serde_json::json;

#[test]
fn a_transaction_of_small_items_costs_two_units_each_plus_index_writes() {
    let index = Index {
        keys: vec!["LIST_PK".into(), "BY_CREATED".into()],
        projected: Some(vec!["version".into()]),
    };
    let package = json!({"PK": {"S": "PROJECT#1"}, "SK": {"S": "PKG#a#1"},
        "LIST_PK": {"S": "LIST#1#default"}, "BY_CREATED": {"S": "1#1"}, "version": {"S": "1"}});
    let file = json!({"PK": {"S": "PKG#1"}, "SK": {"S": "FILE#f#1"}, "size": {"N": "3"}});
    let entries = transaction_keys(&json!({"TransactItems": [
        {"Put": {"Item": package}}, {"Put": {"Item": file}}]}));
    assert_eq!(entries.len(), 2);
    let after = [Some(package.clone()), Some(file.clone())];
    assert_eq!(
        transaction_units(
            &entries,
            &[None, None],
            &after,
            std::slice::from_ref(&index)
        ),
        5.0
    );
    // The same package again, unchanged: no index write.
    let before = after.clone();
    assert_eq!(transaction_units(&entries, &before, &after, &[index]), 4.0);
}

#[test]
fn sizes_follow_the_documented_rules() {
    assert_eq!(item_size(&json!({"ab": {"S": "xyz"}})), 5);
    assert_eq!(item_size(&json!({"n": {"N": "12345"}})), 1 + 4);
    assert_eq!(item_size(&json!({"t": {"BOOL": true}})), 2);
    assert_eq!(kb_units(1025), 2.0);
    assert_eq!(kb_units(0), 1.0);
}
