//! Builds a `Dialplan` from the sections the `.conf` reader produced, following
//! `pbx/pbx_config.c` `pbx_load_config()` (dialplan.md §3).

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use crate::conf::reader::{ConfFile, Item, read_conf, read_conf_text};
use crate::conf::text::PText;
use crate::diag::{Diagnostic, Pos, Sink, SourceMap};
use crate::index::ContextIndex;
use crate::model::{Context, Dialplan, Extension, Hint, Include, Options, Priority};
use crate::pattern::{NameMatcher, cmp_extension, normalize_cid, strip_name_whitespace};
use crate::subst::{Resolver, substitute};
use crate::timespec::TimeSpec;

/// A successfully loaded plan and the warnings Asterisk would log while loading it.
#[derive(Debug)]
pub struct Loaded {
    pub plan: Dialplan,
    pub diagnostics: Vec<Diagnostic>,
}

/// The file was refused, as Asterisk refuses it (§2.2 "parse errors invalidate the
/// whole file"). `diagnostics` holds at least one error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", .diagnostics.iter().find(|d| d.is_error()).map(|d| d.header()).unwrap_or_else(|| "dialplan could not be loaded".into()))]
pub struct LoadFailure {
    pub diagnostics: Vec<Diagnostic>,
}

impl Dialplan {
    /// Reads `path` and every file it includes. Only what Asterisk refuses (an item
    /// before any section, an unknown `(+)`/template base, an unterminated `[`, a
    /// missing include, an include loop, includes nested too deeply) fails; everything
    /// else is a warning in `Loaded::diagnostics`.
    pub fn load(path: impl AsRef<Path>) -> Result<Loaded, LoadFailure> {
        build(read_conf(path.as_ref()))
    }

    /// Like [`Dialplan::load`] for text held in memory; `#include` resolves against
    /// `base_dir` and diagnostics name the file `name`.
    pub fn load_str(name: &str, text: &str, base_dir: &Path) -> Result<Loaded, LoadFailure> {
        build(read_conf_text(name, text, base_dir))
    }
}

/// Resolves load-time substitutions from the globals defined so far (§3.1).
struct GlobalsOnly<'a>(&'a [(String, String)]);

impl Resolver for GlobalsOnly<'_> {
    fn variable(&mut self, name: &str) -> Option<String> {
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
    fn function(&mut self, name: &str, args: &str) -> Option<String> {
        (name == "GLOBAL").then(|| self.variable(args).unwrap_or_default())
    }
}

/// Sort key of an extension inside a context (§5.1); equal keys are one extension.
#[derive(Debug, Clone)]
struct ExtKey(NameMatcher, Option<NameMatcher>);

impl Ord for ExtKey {
    fn cmp(&self, o: &Self) -> Ordering {
        cmp_extension((&self.0, self.1.as_ref()), (&o.0, o.1.as_ref()))
    }
}
impl PartialOrd for ExtKey {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl PartialEq for ExtKey {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl Eq for ExtKey {}

struct CtxBuilder {
    name: String,
    pos: Pos,
    exts: BTreeMap<ExtKey, Extension>,
    includes: Vec<(String, Include)>,
}

struct Builder {
    map: SourceMap,
    sink: Sink,
    globals: Vec<(String, String)>,
    options: Options,
    contexts: HashMap<String, CtxBuilder>,
    order: Vec<String>,
}

/// Per-section state of `pbx_config`: the previous extension field (for `same`) and
/// the previous priority (for `n`), which restart at every section header (§3.1).
struct SectionState {
    last_field: Option<PText>,
    last_pri: i32,
}

/// "No previous priority yet" (Asterisk uses the same sentinel).
const NO_PRI: i32 = -2;

fn build(conf: ConfFile) -> Result<Loaded, LoadFailure> {
    let ConfFile {
        sections,
        map,
        sink,
        fatal,
    } = conf;
    if fatal {
        return Err(LoadFailure {
            diagnostics: sink.diags,
        });
    }
    let mut b = Builder {
        map,
        sink,
        globals: Vec::new(),
        options: Options::default(),
        contexts: HashMap::new(),
        order: Vec::new(),
    };
    let live = sections.iter().filter(|s| !s.template);
    let mut seen_general: Vec<String> = Vec::new();
    for s in live
        .clone()
        .filter(|s| s.name.eq_ignore_ascii_case("general"))
    {
        for it in &s.items {
            b.general(it, &mut seen_general);
        }
    }
    for s in live
        .clone()
        .filter(|s| s.name.eq_ignore_ascii_case("globals"))
    {
        for it in &s.items {
            let v = substitute(&it.value.text, &mut GlobalsOnly(&b.globals));
            b.globals.retain(|(n, _)| *n != it.name);
            b.globals.push((it.name.clone(), v));
        }
    }
    for s in live.filter(|s| {
        !s.name.eq_ignore_ascii_case("general") && !s.name.eq_ignore_ascii_case("globals")
    }) {
        if !b.contexts.contains_key(&s.name) {
            b.order.push(s.name.clone());
            b.contexts.insert(
                s.name.clone(),
                CtxBuilder {
                    name: s.name.clone(),
                    pos: s.pos,
                    exts: BTreeMap::new(),
                    includes: Vec::new(),
                },
            );
        }
        let mut st = SectionState {
            last_field: None,
            last_pri: NO_PRI,
        };
        for it in &s.items {
            b.item(&s.name, it, &mut st);
        }
    }
    b.check_includes();
    Ok(b.finish())
}

impl Builder {
    fn warn(&mut self, pos: Pos, msg: impl Into<String>) {
        self.sink.warn(&self.map, pos, msg);
    }

    fn general(&mut self, it: &Item, seen: &mut Vec<String>) {
        let key = it.name.to_ascii_lowercase();
        // Asterisk 22 uses the first value of a repeated option (§3.1, §15).
        if seen.contains(&key) {
            return;
        }
        seen.push(key.clone());
        let yes = is_true(&it.value.text);
        match key.as_str() {
            "autofallthrough" => self.options.autofallthrough = yes,
            "clearglobalvars" => self.options.clearglobalvars = yes,
            "extenpatternmatchnew" if yes => self.warn(
                it.name_pos,
                "extenpatternmatchnew is not supported; the default matcher is used",
            ),
            _ => {}
        }
    }

    fn item(&mut self, ctx: &str, it: &Item, st: &mut SectionState) {
        let lname = it.name.to_ascii_lowercase();
        match lname.as_str() {
            "exten" => {
                let (field, rest) = split_ext_field(&it.value);
                st.last_field = Some(field.clone());
                match rest {
                    Some(rest) => self.priority_line(ctx, &field, &rest, it.name_pos, st),
                    None => self.warn(
                        it.value.start(),
                        "extension line has no priority (expected 'exten => NAME,PRIORITY,App(args)')",
                    ),
                }
            }
            _ if lname.starts_with("same") => match st.last_field.clone() {
                Some(field) => self.priority_line(ctx, &field, &it.value, it.name_pos, st),
                None => self.warn(
                    it.name_pos,
                    "'same =>' before any 'exten =>' in this section; line ignored",
                ),
            },
            "include" => self.include(ctx, it),
            "switch" | "lswitch" | "eswitch" => self.warn(
                it.name_pos,
                format!(
                    "'{}' is not supported (alternative switches); ignored",
                    it.name
                ),
            ),
            "ignorepat" => self.warn(
                it.name_pos,
                "'ignorepat' only matters for analog lines; ignored",
            ),
            "autohints" => self.warn(it.name_pos, "'autohints' is not supported; ignored"),
            _ => self.warn(
                it.name_pos,
                format!(
                    "unknown directive '{}' in context '{ctx}'; ignored",
                    it.name
                ),
            ),
        }
    }

    fn include(&mut self, ctx: &str, it: &Item) {
        let text = substitute(&it.value.text, &mut GlobalsOnly(&self.globals));
        let text = text.trim().to_string();
        let (name, timing) = match text.find([',', '|']) {
            Some(i) => (
                text[..i].trim().to_string(),
                Some(text[i + 1..].to_string()),
            ),
            None => (text.clone(), None),
        };
        let spec = match &timing {
            Some(t) => match TimeSpec::parse(t) {
                Ok(s) => Some(s),
                Err(e) => {
                    self.warn(
                        it.value.start(),
                        format!("include of '{name}' dropped: {e}"),
                    );
                    return;
                }
            },
            None => None,
        };
        let c = self.contexts.get_mut(ctx).expect("context exists");
        if c.includes.iter().any(|(t, _)| *t == text) {
            let pos = it.value.start();
            self.warn(pos, format!("duplicate include of '{text}'; ignored"));
            return;
        }
        c.includes.push((
            text,
            Include {
                context: name,
                timing_text: timing,
                timing: spec,
                pos: it.value.start(),
            },
        ));
    }

    fn priority_line(
        &mut self,
        ctx: &str,
        field: &PText,
        value: &PText,
        line_pos: Pos,
        st: &mut SectionState,
    ) {
        let ext_text = substitute(&field.text, &mut GlobalsOnly(&self.globals));
        let (name_raw, cid) = match ext_text.find('/') {
            Some(i) => (&ext_text[..i], Some(normalize_cid(&ext_text[i + 1..]))),
            None => (ext_text.as_str(), None),
        };
        let name = strip_name_whitespace(name_raw);
        let name_pos = field.trim().start();

        // Priority field, up to the next comma.
        let v = &value.text;
        let (pri_end, rest_start) = match v.find(',') {
            Some(i) => (i, Some(i + 1)),
            None => (v.len(), None),
        };
        let pri_pt = value.slice(0, pri_end).trim();
        let mut pri = pri_pt.text.clone();
        let pri_pos = pri_pt.start();
        let mut label = None;
        if let Some(open) = pri.find('(') {
            let after = &pri[open + 1..];
            match after.find(')') {
                Some(close) => {
                    label = Some(after[..close].to_string());
                    pri.truncate(open);
                }
                None => {
                    self.warn(
                        pri_pos,
                        format!("label in priority '{pri}' has no closing ')'; line ignored"),
                    );
                    return;
                }
            }
        }
        let mut offset = 0;
        if let Some(plus) = pri.find('+') {
            offset = leading_int(&pri[plus + 1..]).unwrap_or(0);
            pri.truncate(plus);
        }
        let pri = pri.trim().to_string();
        let key = ExtKey(
            NameMatcher::new(&name).0,
            cid.as_deref().map(|c| NameMatcher::new(c).0),
        );
        let number = match pri.as_str() {
            "hint" => -1,
            "n" | "next" => {
                if st.last_pri == NO_PRI {
                    self.warn(
                        pri_pos,
                        "'n' priority on the first line of a section; line ignored",
                    );
                    return;
                }
                st.last_pri + 1
            }
            "s" | "same" => {
                if st.last_pri == NO_PRI {
                    self.warn(
                        pri_pos,
                        "'same' priority on the first line of a section; line ignored",
                    );
                    return;
                }
                st.last_pri
            }
            _ => match leading_int(&pri) {
                Some(n) => n,
                None => {
                    let found = self
                        .contexts
                        .get(ctx)
                        .and_then(|c| c.exts.get(&key))
                        .and_then(|e| e.labels.get(&pri).copied());
                    match found {
                        Some(n) => n,
                        None => {
                            self.warn(
                                pri_pos,
                                format!("unknown priority or label '{pri}'; line ignored"),
                            );
                            return;
                        }
                    }
                }
            },
        };
        if number == 0 || (number < 0 && pri != "hint") {
            let why = if st.last_pri == -1 && pri == "n" {
                "'n' right after a hint computes priority 0".to_string()
            } else {
                format!("invalid priority {number}")
            };
            self.warn(
                pri_pos,
                format!("{why}; line ignored (priorities start at 1)"),
            );
            return;
        }
        let number = if number > 0 { number + offset } else { number };
        st.last_pri = number;

        let rest = match rest_start {
            Some(s) => value.slice(s, value.text.len()),
            None => PText::new(value.pos_at(value.text.len())),
        };
        if number == -1 {
            self.add_hint(ctx, key, &name, cid, name_pos, &rest);
            return;
        }
        let (app, app_pos, data, data_pos) = self.split_app(&rest);
        let prio = Priority {
            number,
            label,
            app,
            data,
            pos: line_pos,
            app_pos,
            data_pos,
        };
        self.add_priority(ctx, key, &name, cid, name_pos, prio);
    }

    fn split_app(&mut self, rest: &PText) -> (String, Pos, String, Pos) {
        let t = &rest.text;
        let lead = t.len() - t.trim_start().len();
        let app_pos = rest.pos_at(lead);
        let Some(open) = t.find('(') else {
            return (
                t.trim().to_string(),
                app_pos,
                String::new(),
                rest.pos_at(t.len()),
            );
        };
        let before = &t[..open];
        if before.contains("${") || before.contains("$[") {
            return (
                t.trim().to_string(),
                app_pos,
                String::new(),
                rest.pos_at(t.len()),
            );
        }
        let data_start = open + 1;
        let data = match t.rfind(')').filter(|&c| c >= data_start) {
            Some(close) => t[data_start..close].to_string(),
            None => {
                self.warn(
                    rest.pos_at(open),
                    "missing ')' after application data; data runs to the end of the line",
                );
                t[data_start..].to_string()
            }
        };
        (
            before.trim().to_string(),
            app_pos,
            data,
            rest.pos_at(data_start),
        )
    }

    fn ext_entry<'a>(
        c: &'a mut CtxBuilder,
        key: ExtKey,
        name: &str,
        cid: Option<String>,
        pos: Pos,
    ) -> (&'a mut Extension, bool) {
        let mut created = false;
        let e = c.exts.entry(key.clone()).or_insert_with(|| {
            created = true;
            Extension {
                name: name.to_string(),
                matcher: key.0.clone(),
                cid,
                cid_matcher: key.1.clone(),
                priorities: BTreeMap::new(),
                labels: HashMap::new(),
                hint: None,
                pos,
            }
        });
        (e, created)
    }

    fn add_hint(
        &mut self,
        ctx: &str,
        key: ExtKey,
        name: &str,
        cid: Option<String>,
        pos: Pos,
        rest: &PText,
    ) {
        let c = self.contexts.get_mut(ctx).expect("context exists");
        let (e, _) = Self::ext_entry(c, key, name, cid, pos);
        if e.hint.is_some() {
            let msg = format!("extension '{name}' already has a hint; this one is ignored");
            self.warn(pos, msg);
            return;
        }
        e.hint = Some(Hint {
            device: rest.text.trim().to_string(),
            pos,
        });
    }

    fn add_priority(
        &mut self,
        ctx: &str,
        key: ExtKey,
        name: &str,
        cid: Option<String>,
        pos: Pos,
        prio: Priority,
    ) {
        let c = self.contexts.get_mut(ctx).expect("context exists");
        let (e, created) = Self::ext_entry(c, key, name, cid, pos);
        let mut msgs = Vec::new();
        if created && (name == "_." || name == "_!") {
            msgs.push((pos, format!("pattern '{name}' matches everything, including the special extensions h, i and t; '_X.' is usually meant")));
        }
        if let Some(old) = e.priorities.get(&prio.number) {
            let msg = format!(
                "duplicate priority {} of extension '{}' in context '{ctx}'; the first definition (line {}) is kept",
                prio.number,
                e.display_name(),
                old.pos.line
            );
            msgs.push((prio.pos, msg));
        } else {
            let mut prio = prio;
            if let Some(l) = prio.label.clone() {
                let display = e.display_name();
                match e.labels.entry(l) {
                    std::collections::hash_map::Entry::Occupied(o) => {
                        msgs.push((
                            prio.pos,
                            format!(
                                "label '{}' is already used in extension '{display}'; the label is dropped",
                                o.key()
                            ),
                        ));
                        prio.label = None;
                    }
                    std::collections::hash_map::Entry::Vacant(v) => {
                        v.insert(prio.number);
                    }
                }
            }
            e.priorities.insert(prio.number, prio);
        }
        for (p, m) in msgs {
            self.warn(p, m);
        }
    }

    fn check_includes(&mut self) {
        let mut msgs = Vec::new();
        for name in &self.order {
            let c = &self.contexts[name];
            for (_, inc) in &c.includes {
                if !self.contexts.contains_key(&inc.context) {
                    msgs.push((inc.pos, format!("context '{}' includes '{}', which does not exist; it is skipped at run time", c.name, inc.context)));
                }
            }
        }
        for (p, m) in msgs {
            self.warn(p, m);
        }
    }

    fn finish(self) -> Loaded {
        let mut contexts = HashMap::new();
        for (name, c) in self.contexts {
            let extensions: Vec<Extension> = c.exts.into_values().collect();
            let index = ContextIndex::build(&extensions);
            contexts.insert(
                name,
                Context {
                    name: c.name,
                    pos: c.pos,
                    extensions,
                    includes: c.includes.into_iter().map(|(_, i)| i).collect(),
                    index,
                },
            );
        }
        Loaded {
            plan: Dialplan {
                contexts,
                order: self.order,
                globals: self.globals,
                options: self.options,
                sources: self.map,
            },
            diagnostics: self.sink.diags,
        }
    }
}

/// The extension field runs to the first comma outside `[...]`; a backslash protects
/// the next character and is kept (§3.3 step 1).
fn split_ext_field(value: &PText) -> (PText, Option<PText>) {
    let b = value.text.as_bytes();
    let mut bracket = false;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 1,
            b'[' => bracket = true,
            b']' => bracket = false,
            b',' if !bracket => {
                return (value.slice(0, i), Some(value.slice(i + 1, b.len())));
            }
            _ => {}
        }
        i += 1;
    }
    (value.clone(), None)
}

/// `sscanf("%d")`: optional sign and digits at the start.
fn leading_int(s: &str) -> Option<i32> {
    let t = s.trim_start();
    let end = t
        .char_indices()
        .take_while(|(i, c)| c.is_ascii_digit() || (*i == 0 && (*c == '-' || *c == '+')))
        .count();
    t[..end].parse().ok()
}

fn is_true(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "yes" | "true" | "y" | "t" | "1" | "on"
    )
}
