//! Channel variables with inheritance prefixes (§8.4, §8.5) and the process-wide
//! globals.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::model::Dialplan;

/// How a channel variable passes to channels this one creates (Dial legs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inherit {
    /// Plain `NAME`: not passed on.
    No,
    /// `_NAME`: copied once, as plain `NAME`.
    Once,
    /// `__NAME`: copied to every generation, keeping `__`.
    Always,
}

/// Splits an inheritance prefix off a name being set.
pub fn split_prefix(name: &str) -> (&str, Inherit) {
    if let Some(n) = name.strip_prefix("__") {
        (n, Inherit::Always)
    } else if let Some(n) = name.strip_prefix('_') {
        (n, Inherit::Once)
    } else {
        (name, Inherit::No)
    }
}

/// A channel's variables, in the order they were first set.
#[derive(Debug, Clone, Default)]
pub struct VarStore {
    vars: Vec<(String, String, Inherit)>,
}

impl VarStore {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, _)| v.as_str())
    }

    pub fn entry(&self, name: &str) -> Option<(String, Inherit)> {
        self.vars
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, i)| (v.clone(), *i))
    }

    /// Sets `name` (which may carry `_`/`__`); replaces any variable of the same base
    /// name, and the new prefix decides inheritance (§8.5).
    pub fn set(&mut self, name: &str, value: &str) {
        let (base, inherit) = split_prefix(name);
        self.set_raw(base, value, inherit);
    }

    pub fn set_raw(&mut self, base: &str, value: &str, inherit: Inherit) {
        match self.vars.iter_mut().find(|(n, _, _)| n == base) {
            Some(slot) => {
                slot.1 = value.to_string();
                slot.2 = inherit;
            }
            None => self
                .vars
                .push((base.to_string(), value.to_string(), inherit)),
        }
    }

    pub fn remove(&mut self, name: &str) {
        self.vars.retain(|(n, _, _)| n != name);
    }

    /// What a child channel (a Dial leg) receives: `_NAME` as `NAME`, `__NAME` as
    /// `__NAME` so it keeps passing down.
    pub fn inherited(&self) -> Vec<(String, String)> {
        self.vars
            .iter()
            .filter_map(|(n, v, i)| match i {
                Inherit::No => None,
                Inherit::Once => Some((n.clone(), v.clone())),
                Inherit::Always => Some((format!("__{n}"), v.clone())),
            })
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars.iter().map(|(n, v, _)| (n.as_str(), v.as_str()))
    }
}

/// Global variables shared by every call (§8.4). Cloning is cheap (an `Arc`); reads
/// and writes take a short lock, which is fine off the media path.
#[derive(Debug, Clone, Default)]
pub struct Globals(Arc<RwLock<HashMap<String, String>>>);

impl Globals {
    pub fn new() -> Self {
        Self::default()
    }

    /// Globals initialised from a plan's `[globals]`.
    pub fn from_plan(plan: &Dialplan) -> Self {
        let g = Globals::new();
        g.apply_plan(plan);
        g
    }

    /// What a reload does (§3.1 `clearglobalvars`): optionally wipe, then (re)apply the
    /// file's `[globals]`.
    pub fn apply_plan(&self, plan: &Dialplan) {
        let mut m = self.0.write().unwrap_or_else(|e| e.into_inner());
        if plan.options().clearglobalvars {
            m.clear();
        }
        for (k, v) in plan.globals() {
            m.insert(k.clone(), v.clone());
        }
    }

    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }

    pub fn set(&self, name: &str, value: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), value.to_string());
    }

    pub fn remove(&self, name: &str) {
        self.0
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(name);
    }

    /// All globals, sorted by name.
    pub fn snapshot(&self) -> Vec<(String, String)> {
        let mut v: Vec<_> = self
            .0
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        v.sort();
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_replace_and_inherit() {
        let mut v = VarStore::default();
        v.set("_ONE", "1");
        v.set("__TWO", "2");
        v.set("THREE", "3");
        assert_eq!(v.get("ONE"), Some("1"));
        assert_eq!(v.get("_ONE"), None);
        assert_eq!(
            v.inherited(),
            [
                ("ONE".to_string(), "1".to_string()),
                ("__TWO".into(), "2".into())
            ]
        );
        v.set("ONE", "x");
        assert_eq!(v.inherited(), [("__TWO".to_string(), "2".to_string())]);
    }

    #[test]
    fn globals_are_shared() {
        let g = Globals::new();
        let g2 = g.clone();
        g.set("A", "1");
        assert_eq!(g2.get("A").as_deref(), Some("1"));
    }
}
