//! What real DynamoDB bills for the writes DynamoDB Local reports wrongly: transactions and
//! refused conditional writes (`/work/notes`-style research, summarised in BENCHMARKS.md).
//!
//! DynamoDB Local reports a `TransactWriteItems` as twice the sum of its *distinct* per-item
//! units (four small items count as one), and a refused conditional write as nothing. AWS
//! documents a transactional write as two units per item per KB (rounded up per item, on the
//! larger of the item's before and after images), index writes as one unit per KB of each index
//! entry that changes (two writes when its key moves), and a refused conditional write as at
//! least one unit. This module computes that from the items' images, which the proxy reads
//! (uncounted) before and after forwarding the request. Reads, single-item and batch writes
//! keep DynamoDB Local's own figure, which matches the documentation.

use serde_json::Value;
use std::collections::BTreeMap;

/// One global secondary index: its key attributes and the non-key attributes it projects
/// (`None`: all of them).
#[derive(Debug, Clone)]
pub struct Index {
    pub keys: Vec<String>,
    pub projected: Option<Vec<String>>,
}

impl Index {
    /// The indexes of a `DescribeTable` answer.
    pub fn all_of(describe: &Value) -> Vec<Index> {
        let indexes = describe["Table"]["GlobalSecondaryIndexes"].as_array();
        indexes
            .into_iter()
            .flatten()
            .map(|gsi| {
                let keys = gsi["KeySchema"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k["AttributeName"].as_str().map(String::from))
                    .collect();
                let projection = &gsi["Projection"];
                let projected = match projection["ProjectionType"].as_str() {
                    Some("ALL") => None,
                    _ => Some(
                        projection["NonKeyAttributes"]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(|a| a.as_str().map(String::from))
                            .collect(),
                    ),
                };
                Index { keys, projected }
            })
            .collect()
    }

    /// The entry `item` makes in this index (the table's key is always projected), if it has
    /// the index's keys.
    fn entry(&self, item: Option<&Value>) -> Option<BTreeMap<String, Value>> {
        let attributes = item?.as_object()?;
        if !self.keys.iter().all(|k| attributes.contains_key(k)) {
            return None;
        }
        let kept = |name: &String| {
            name == "PK"
                || name == "SK"
                || self.keys.contains(name)
                || self.projected.as_ref().is_none_or(|p| p.contains(name))
        };
        Some(
            attributes
                .iter()
                .filter(|(name, _)| kept(name))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect(),
        )
    }

    /// Write units this index costs when an item goes from `before` to `after`.
    fn write_units(&self, before: Option<&Value>, after: Option<&Value>) -> f64 {
        let (old, new) = (self.entry(before), self.entry(after));
        let units = |entry: &BTreeMap<String, Value>| {
            let size: usize = entry.iter().map(|(n, v)| n.len() + value_size(v)).sum();
            kb_units(size)
        };
        match (&old, &new) {
            (None, None) => 0.0,
            (Some(o), None) => units(o),
            (None, Some(n)) => units(n),
            (Some(o), Some(n)) if o == n => 0.0,
            (Some(o), Some(n)) => {
                let key_moved = self.keys.iter().any(|k| o.get(k) != n.get(k));
                if key_moved {
                    units(o) + units(n)
                } else {
                    units(n)
                }
            }
        }
    }
}

/// Whole KB, rounded up, at least one.
pub fn kb_units(bytes: usize) -> f64 {
    bytes.div_ceil(1024).max(1) as f64
}

/// The size DynamoDB counts for one attribute value (DynamoDB JSON).
fn value_size(value: &Value) -> usize {
    let Some((kind, v)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    match kind.as_str() {
        "S" => v.as_str().map_or(0, str::len),
        // About one byte per two significant digits, plus one.
        "N" => v.as_str().map_or(0, |n| {
            let digits = n.trim_start_matches(['-', '0']).replace('.', "");
            digits.trim_end_matches('0').len().div_ceil(2) + 1
        }),
        "B" => v.as_str().map_or(0, |b| b.len() * 3 / 4),
        "BOOL" | "NULL" => 1,
        "M" => {
            3 + v.as_object().map_or(0, |m| {
                m.iter().map(|(n, v)| n.len() + value_size(v) + 1).sum()
            })
        }
        "L" => {
            3 + v
                .as_array()
                .map_or(0, |l| l.iter().map(|v| value_size(v) + 1).sum())
        }
        "SS" | "NS" | "BS" => v.as_array().map_or(0, |l| {
            l.iter().map(|s| s.as_str().map_or(0, str::len)).sum()
        }),
        _ => 0,
    }
}

/// The size of a whole item (DynamoDB JSON attributes).
pub fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, |attributes| {
        attributes
            .iter()
            .map(|(name, value)| name.len() + value_size(value))
            .sum()
    })
}

/// The key (`PK`, `SK`) each entry of a `TransactWriteItems` request writes or checks, and
/// whether it only checks.
pub fn transaction_keys(request: &Value) -> Vec<(Value, bool)> {
    let entries = request["TransactItems"].as_array();
    entries
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let (kind, body) = entry.as_object()?.iter().next()?;
            let key = match kind.as_str() {
                "Put" => {
                    let item = &body["Item"];
                    serde_json::json!({"PK": item["PK"], "SK": item["SK"]})
                }
                _ => body["Key"].clone(),
            };
            Some((key, kind == "ConditionCheck"))
        })
        .collect()
}

/// What a committed transaction costs: per item, two units per KB of the larger of its
/// images (a check: of the item checked), and the index writes its change makes (not doubled).
pub fn transaction_units(
    entries: &[(Value, bool)],
    before: &[Option<Value>],
    after: &[Option<Value>],
    indexes: &[Index],
) -> f64 {
    let mut units = 0.0;
    for (i, (_, check_only)) in entries.iter().enumerate() {
        let (old, new) = (before[i].as_ref(), after[i].as_ref());
        let size = old.map_or(0, item_size).max(new.map_or(0, item_size));
        units += 2.0 * kb_units(size);
        if !check_only {
            units += indexes.iter().map(|x| x.write_units(old, new)).sum::<f64>();
        }
    }
    units
}

/// A write refused by its condition: at least one unit (DynamoDB Local reports none).
pub const REFUSED_WRITE_UNITS: f64 = 1.0;
