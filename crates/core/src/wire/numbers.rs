//! JSON Schema's `integer` is a number with no fractional part, so `2.0` is an integer as much as
//! `2` is, and a schema-driven client may send either. serde's `i64` takes only the second; request
//! fields the document calls integers are read with [`whole_number`] instead.

use serde::Deserializer;
use serde::de::{Error, Visitor};

/// A whole number, written with or without a fraction of zero, that fits an `i64`.
pub fn whole_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<i64, D::Error> {
    deserializer.deserialize_any(WholeNumber)
}

/// [`whole_number`] for an optional field (with `#[serde(default)]`).
pub fn optional_whole_number<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<i64>, D::Error> {
    whole_number(deserializer).map(Some)
}

struct WholeNumber;

impl Visitor<'_> for WholeNumber {
    type Value = i64;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a whole number")
    }

    fn visit_i64<E: Error>(self, value: i64) -> Result<i64, E> {
        Ok(value)
    }

    fn visit_u64<E: Error>(self, value: u64) -> Result<i64, E> {
        i64::try_from(value).map_err(|_| E::custom(format!("{value} is too large")))
    }

    fn visit_f64<E: Error>(self, value: f64) -> Result<i64, E> {
        // Every whole f64 within ±2^63 converts exactly; the bounds are powers of two, so exact too.
        const LIMIT: f64 = 9_223_372_036_854_775_808.0;
        if value.fract() == 0.0 && (-LIMIT..LIMIT).contains(&value) {
            Ok(value as i64)
        } else {
            Err(E::custom(format!("{value} is not a whole number")))
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    struct Quantity {
        #[serde(deserialize_with = "super::whole_number")]
        n: i64,
    }

    #[test]
    fn whole_numbers_with_or_without_a_zero_fraction() {
        let cases = [
            (r#"{"n": 2}"#, Some(2)),
            (r#"{"n": 2.0}"#, Some(2)),
            (r#"{"n": -3.0}"#, Some(-3)),
            (r#"{"n": 1e2}"#, Some(100)),
            (r#"{"n": 2.5}"#, None),
            (r#"{"n": 9223372036854775807}"#, Some(i64::MAX)),
            (r#"{"n": 9223372036854775808}"#, None),
            (r#"{"n": 9.3e18}"#, None),
            (r#"{"n": "2"}"#, None),
            (r#"{"n": null}"#, None),
        ];
        for (json, expected) in cases {
            let parsed = serde_json::from_str::<Quantity>(json).ok().map(|q| q.n);
            assert_eq!(parsed, expected, "{json}");
        }
    }
}
