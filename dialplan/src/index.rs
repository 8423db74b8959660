//! Per-context index so a lookup costs the same with ten or ten thousand extensions
//! (issue 3, "Design"). Literals sit in a hash map; patterns in a trie over their
//! positions. Every extension is identified by its rank in the context's sorted list,
//! so the candidates a lookup collects come out in Asterisk's order (§5.1) by sorting
//! a handful of small integers.

use std::collections::HashMap;

use crate::model::Extension;
use crate::pattern::{CharSet, Elem, NameMatcher, strip_dashes};

#[derive(Debug, Clone, Default)]
struct Node {
    /// Children for single characters, sorted by byte.
    lit: Vec<(u8, u32)>,
    /// Children for multi-character sets (`X`, `N`, `[1-5]`, ...).
    sets: Vec<(CharSet, u32)>,
    /// Patterns that end here.
    end: Vec<u32>,
    /// Patterns with `.` here.
    dot: Vec<u32>,
    /// Patterns with `!` here.
    bang: Vec<u32>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ContextIndex {
    literals: HashMap<String, Vec<u32>>,
    /// Pattern text → ranks, for a dialed string that spells a pattern (§4.4).
    pattern_names: HashMap<String, Vec<u32>>,
    nodes: Vec<Node>,
}

impl ContextIndex {
    /// Builds the index over extensions already in sort order.
    pub fn build(exts: &[Extension]) -> ContextIndex {
        let mut ix = ContextIndex {
            nodes: vec![Node::default()],
            ..Default::default()
        };
        for (rank, e) in exts.iter().enumerate() {
            let rank = rank as u32;
            match &e.matcher {
                NameMatcher::Literal(l) => ix.literals.entry(l.clone()).or_default().push(rank),
                NameMatcher::Pattern { raw, pattern } => {
                    ix.pattern_names.entry(raw.clone()).or_default().push(rank);
                    if pattern.broken {
                        continue; // never matches (§4.2)
                    }
                    let mut node = 0usize;
                    let mut terminal = None;
                    for el in &pattern.elems {
                        match el {
                            Elem::Set(s) => node = ix.child(node, *s),
                            Elem::Dot => terminal = Some(1),
                            Elem::Bang => terminal = Some(2),
                        }
                    }
                    let n = &mut ix.nodes[node];
                    match terminal {
                        Some(1) => n.dot.push(rank),
                        Some(_) => n.bang.push(rank),
                        None => n.end.push(rank),
                    }
                }
            }
        }
        ix
    }

    fn child(&mut self, node: usize, set: CharSet) -> usize {
        let next = self.nodes.len() as u32;
        let n = &mut self.nodes[node];
        if let Some(c) = set.only() {
            match n.lit.binary_search_by_key(&c, |x| x.0) {
                Ok(i) => return n.lit[i].1 as usize,
                Err(i) => n.lit.insert(i, (c, next)),
            }
        } else {
            if let Some((_, id)) = n.sets.iter().find(|(s, _)| *s == set) {
                return *id as usize;
            }
            n.sets.push((set, next));
        }
        self.nodes.push(Node::default());
        next as usize
    }

    /// Ranks of every extension whose *name* matches `dialed`, in sort order. Caller-id
    /// conditions and priorities are checked by the caller.
    pub fn candidates(&self, dialed: &str, out: &mut Vec<u32>) {
        out.clear();
        let d = strip_dashes(dialed);
        if let Some(v) = self.literals.get(&d) {
            out.extend_from_slice(v);
        }
        if dialed.starts_with('_')
            && let Some(v) = self.pattern_names.get(dialed)
        {
            out.extend_from_slice(v);
        }
        self.walk(0, d.as_bytes(), out);
        out.sort_unstable();
        out.dedup();
    }

    fn walk(&self, node: usize, d: &[u8], out: &mut Vec<u32>) {
        let n = &self.nodes[node];
        out.extend_from_slice(&n.bang);
        let Some((&c, rest)) = d.split_first() else {
            out.extend_from_slice(&n.end);
            return;
        };
        out.extend_from_slice(&n.dot);
        if let Ok(i) = n.lit.binary_search_by_key(&c, |x| x.0) {
            self.walk(n.lit[i].1 as usize, rest, out);
        }
        for (set, child) in &n.sets {
            if set.contains(c) {
                self.walk(*child as usize, rest, out);
            }
        }
    }
}
