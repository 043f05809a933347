//! Reading one table's fields by type, each wrong one a problem of the [`Check`], and the keys
//! it has that nobody read.

use std::ops::Range;

use toml::Spanned;
use toml::de::DeValue;

use super::{Check, Table};

/// Reads typed fields from one table, remembering which keys were known.
pub(super) struct Fields<'a, 'i> {
    table: &'a Table<'i>,
    at: &'a str,
    known: Vec<&'static str>,
}

impl<'a, 'i> Fields<'a, 'i> {
    pub(super) fn new(table: &'a Table<'i>, at: &'a str) -> Self {
        Self {
            table,
            at,
            known: Vec::new(),
        }
    }

    fn value(&mut self, key: &'static str) -> Option<&'a Spanned<DeValue<'i>>> {
        self.known.push(key);
        self.table.get(key)
    }

    pub(super) fn span(&self, key: &str) -> Option<Range<usize>> {
        self.table.get(key).map(|v| v.span())
    }

    fn wrong(&self, check: &mut Check<'_>, key: &str, value: &Spanned<DeValue<'_>>, expected: &str) {
        let found = value.get_ref().type_str();
        check.problem(
            value.span(),
            format!("{}.{key}", self.at),
            format!("must be {expected}, not {found}"),
        );
    }

    pub(super) fn string(&mut self, check: &mut Check<'_>, key: &'static str) -> Option<String> {
        let value = self.value(key)?;
        match value.get_ref().as_str() {
            Some(s) => Some(s.to_string()),
            None => {
                self.wrong(check, key, value, "a string");
                None
            }
        }
    }

    /// A list of host names (letters, digits, `-` and `.`), lowercased.
    pub(super) fn hosts(&mut self, check: &mut Check<'_>, key: &'static str) -> Option<Vec<String>> {
        let value = self.value(key)?;
        let Some(items) = value.get_ref().as_array() else {
            self.wrong(check, key, value, "a list of host names");
            return None;
        };
        let mut hosts = Vec::new();
        for item in items {
            let valid = item.get_ref().as_str().filter(|h| {
                !h.is_empty()
                    && h.len() <= 253
                    && h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            });
            match valid {
                Some(host) => hosts.push(host.to_ascii_lowercase()),
                None => check.problem(
                    item.span(),
                    format!("{}.{key}", self.at),
                    "each entry must be a host name such as \"chat.example.org\" (no port, no scheme)",
                ),
            }
        }
        Some(hosts)
    }

    pub(super) fn boolean(&mut self, check: &mut Check<'_>, key: &'static str) -> Option<bool> {
        let value = self.value(key)?;
        let b = value.get_ref().as_bool();
        if b.is_none() {
            self.wrong(check, key, value, "true or false");
        }
        b
    }

    pub(super) fn integer(
        &mut self,
        check: &mut Check<'_>,
        key: &'static str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Option<i64> {
        let value = self.value(key)?;
        let Some(n) = value.get_ref().as_integer() else {
            self.wrong(check, key, value, "an integer");
            return None;
        };
        match i64::from_str_radix(n.as_str(), n.radix()) {
            Ok(n) if range.contains(&n) => Some(n),
            _ => {
                check.problem(
                    value.span(),
                    format!("{}.{key}", self.at),
                    format!("must be from {} to {}", range.start(), range.end()),
                );
                None
            }
        }
    }

    pub(super) fn finish(self, check: &mut Check<'_>, expected: &str) {
        for (key, _) in self.table {
            if !self.known.contains(&key.get_ref().as_ref()) {
                check.problem(
                    key.span(),
                    format!("{}.{}", self.at, key.get_ref()),
                    format!("unknown key (known: {expected})"),
                );
            }
        }
    }
}
