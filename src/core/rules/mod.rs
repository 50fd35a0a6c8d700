//! Rule files: the policy, CEL rules over [`Features`], and their own tests.
//!
//! Loading parses the TOML, type-checks every `when` expression against the
//! feature schema, checks channel consistency, compiles, and runs the file's
//! tests — all problems are collected and reported with file, line and
//! column. Only a file that passes everything becomes a [`RuleSet`]; the
//! caller swaps it in atomically (`Engine::swap_rules`).

pub mod cel;
pub mod schema;

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::domain::{Action, Channel, Factor, FactorSet};

use super::features::Features;
use super::policy::{self, Context, Effect, FailMode, Hit, Policy};

/// The rule file shipped in the binary.
pub const DEFAULT_RULES_TOML: &str = include_str!("../../../rules/default.toml");

/// The most rules a file may hold.
pub const MAX_RULES: usize = 1000;
/// The largest rule file accepted, bytes.
pub const MAX_FILE_BYTES: usize = 1 << 20;

/// A problem found while loading a rule file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub origin: String,
    pub line: usize,
    pub column: usize,
    /// The rule or test the problem is in, if any.
    pub item: Option<String>,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}: ", self.origin, self.line, self.column)?;
        if let Some(item) = &self.item {
            write!(f, "`{item}`: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A rejected rule file: every error found, and the warnings.
#[derive(Debug, thiserror::Error)]
#[error("{}", render(.errors))]
pub struct LoadError {
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
}

fn render(ds: &[Diagnostic]) -> String {
    let lines: Vec<String> = ds.iter().map(ToString::to_string).collect();
    format!("{} error(s):\n{}", ds.len(), lines.join("\n"))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Mode {
    Enforce,
    Shadow,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum EffectName {
    Deny,
    StepUp,
    Allow,
    AddScore,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileRaw {
    policy: PolicyRaw,
    #[serde(default, rename = "rule")]
    rules: Vec<RuleRaw>,
    #[serde(default, rename = "test")]
    tests: Vec<TestRaw>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyRaw {
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    fail_mode: FailMode,
    thresholds: ThresholdsRaw,
    step_up: StepUpRaw,
    channels: toml::Spanned<BTreeMap<toml::Spanned<String>, ChannelRaw>>,
}

/// A channel's entry: the factors it can perform, as a list, or as a table
/// that also says what a step-up it cannot perform becomes.
#[derive(Deserialize)]
#[serde(untagged)]
enum ChannelRaw {
    Factors(Vec<Factor>),
    Table(ChannelTable),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChannelTable {
    factors: Vec<Factor>,
    /// `"deny"`: a step-up the channel cannot perform is denied, and the
    /// file says so on purpose (no warning).
    #[serde(default)]
    step_up_without_factor: Option<WithoutFactor>,
}

#[derive(Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
enum WithoutFactor {
    Deny,
}

impl ChannelRaw {
    fn factors(&self) -> &[Factor] {
        match self {
            ChannelRaw::Factors(f) => f,
            ChannelRaw::Table(t) => &t.factors,
        }
    }

    /// The file states that step-ups without a factor are denied here.
    fn denies_on_purpose(&self) -> bool {
        matches!(
            self,
            ChannelRaw::Table(ChannelTable {
                step_up_without_factor: Some(WithoutFactor::Deny),
                ..
            })
        )
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThresholdsRaw {
    medium: f64,
    high: f64,
    #[serde(default)]
    deny: Option<f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StepUpRaw {
    medium: Vec<Factor>,
    high: Vec<Factor>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleRaw {
    name: toml::Spanned<String>,
    #[serde(default)]
    description: String,
    when: toml::Spanned<String>,
    effect: EffectName,
    #[serde(default)]
    min_factor: Option<Factor>,
    #[serde(default)]
    score: Option<f64>,
    #[serde(default = "enforce")]
    mode: Mode,
    #[serde(default)]
    channels: Option<Vec<Channel>>,
}

fn enforce() -> Mode {
    Mode::Enforce
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TestRaw {
    name: toml::Spanned<String>,
    /// A partial feature struct in dotted keys; unset fields take defaults.
    #[serde(default)]
    features: Option<toml::Spanned<toml::Table>>,
    /// The model score to assume (rule tests do not depend on the model).
    #[serde(default)]
    score: f64,
    #[serde(default)]
    enrolled: Vec<Factor>,
    expect_action: Action,
    #[serde(default)]
    expect_rules: Option<Vec<String>>,
}

/// A compiled rule.
pub struct Rule {
    pub name: String,
    pub description: String,
    pub effect: Effect,
    pub shadow: bool,
    channels: Option<ChannelSet>,
    program: cel::Program<Features>,
}

/// A small channel set.
#[derive(Clone, Copy)]
struct ChannelSet(u8);

impl ChannelSet {
    fn contains(self, c: Channel) -> bool {
        self.0 & (1 << (c as u8)) != 0
    }
}

impl Rule {
    /// The feature fields the rule reads.
    pub fn fields_used(&self) -> Vec<&'static str> {
        self.program.fields_used()
    }
}

/// A loaded, checked, tested rule file.
pub struct RuleSet {
    pub policy: Policy,
    pub rules: Vec<Rule>,
    /// `version@hash`: names the file's content in every decision.
    pub version: String,
    pub warnings: Vec<Diagnostic>,
    /// Number of the file's own tests that ran (and passed).
    pub tests_passed: usize,
}

/// What evaluating the rules found.
pub struct Evaluation<'a> {
    pub hits: Vec<Hit<'a>>,
    /// Rules whose evaluation failed at run time (overflow, division by
    /// zero): treated as not firing, and counted.
    pub errors: Vec<(&'a str, cel::EvalError)>,
}

impl RuleSet {
    /// The shipped rule file.
    pub fn embedded() -> Result<Self, LoadError> {
        Self::parse(DEFAULT_RULES_TOML, "rules/default.toml")
    }

    /// Loads a rule file from disk.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let origin = path.display().to_string();
        let text = match std::fs::read(path) {
            Ok(bytes) if bytes.len() > MAX_FILE_BYTES => {
                return Err(single(
                    &origin,
                    format!("file is larger than {MAX_FILE_BYTES} bytes"),
                ));
            }
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(t) => t,
                Err(_) => return Err(single(&origin, "file is not valid UTF-8".into())),
            },
            Err(e) => return Err(single(&origin, format!("cannot read file: {e}"))),
        };
        Self::parse(&text, &origin)
    }

    /// Evaluates the rules that apply to the attempt's channel.
    pub fn evaluate(&self, f: &Features) -> Evaluation<'_> {
        let mut hits = Vec::new();
        let mut errors = Vec::new();
        for r in &self.rules {
            if r.channels.is_some_and(|c| !c.contains(f.attempt.channel)) {
                continue;
            }
            match r.program.eval(f) {
                Ok(true) => hits.push(Hit {
                    name: &r.name,
                    description: &r.description,
                    effect: r.effect,
                    shadow: r.shadow,
                }),
                Ok(false) => {}
                Err(e) => errors.push((r.name.as_str(), e)),
            }
        }
        Evaluation { hits, errors }
    }

    /// Parses, checks, compiles and tests a rule file; `origin` names it in
    /// diagnostics.
    pub fn parse(text: &str, origin: &str) -> Result<Self, LoadError> {
        if text.len() > MAX_FILE_BYTES {
            return Err(single(
                origin,
                format!("file is larger than {MAX_FILE_BYTES} bytes"),
            ));
        }
        let lines = LineIndex::new(text);
        let raw: FileRaw = match toml::from_str(text) {
            Ok(r) => r,
            Err(e) => {
                let (line, column) = e.span().map_or((1, 1), |s| lines.position(s.start));
                return Err(LoadError {
                    errors: vec![Diagnostic {
                        origin: origin.into(),
                        line,
                        column,
                        item: None,
                        message: e.message().trim().to_string(),
                    }],
                    warnings: Vec::new(),
                });
            }
        };
        let mut errors = Vec::new();
        let mut warnings = Vec::new();
        let diag = |pos: (usize, usize), item: Option<&str>, message: String| Diagnostic {
            origin: origin.into(),
            line: pos.0,
            column: pos.1,
            item: item.map(str::to_string),
            message,
        };

        // The policy.
        let p = &raw.policy;
        let t = &p.thresholds;
        let ordered = 0.0 < t.medium
            && t.medium <= t.high
            && t.high <= 1.0
            && t.deny.is_none_or(|d| t.high <= d && d <= 1.0);
        if !ordered {
            errors.push(diag(
                (1, 1),
                Some("policy.thresholds"),
                "thresholds must satisfy 0 < medium <= high <= deny <= 1".into(),
            ));
        }
        let mut channel_factors = [FactorSet::EMPTY; Channel::ALL.len()];
        // Where each channel is declared, and whether its denials are meant.
        let mut declared: [Option<((usize, usize), bool)>; Channel::ALL.len()] =
            [None; Channel::ALL.len()];
        let channels_at = lines.position(p.channels.span().start);
        for (name, entry) in p.channels.get_ref() {
            match Channel::parse(name.get_ref()) {
                Some(c) => {
                    channel_factors[c as usize] = entry.factors().iter().copied().collect();
                    declared[c as usize] =
                        Some((lines.position(name.span().start), entry.denies_on_purpose()));
                }
                None => errors.push(diag(
                    lines.position(name.span().start),
                    Some("policy.channels"),
                    format!(
                        "unknown channel `{}` (channels: {})",
                        name.get_ref(),
                        Channel::ALL
                            .iter()
                            .map(|c| c.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )),
            }
        }
        let policy = Policy {
            medium: t.medium,
            high: t.high,
            deny: t.deny,
            medium_factors: p.step_up.medium.iter().copied().collect(),
            high_factors: p.step_up.high.iter().copied().collect(),
            channel_factors,
            fail_mode: p.fail_mode,
        };
        for c in Channel::ALL {
            let Some((at, on_purpose)) = declared[*c as usize] else {
                warnings.push(diag(
                    channels_at,
                    Some("policy.channels"),
                    format!("channel `{c}` is not declared: it can perform no factor, so every step-up on it is a DENY"),
                ));
                continue;
            };
            if on_purpose {
                continue;
            }
            for (level, set) in [
                ("medium", policy.medium_factors),
                ("high", policy.high_factors),
            ] {
                if set.intersect(policy.channel(*c)).is_empty() {
                    warnings.push(diag(
                        at,
                        Some("policy.channels"),
                        format!("channel `{c}` can perform none of the factors accepted at {level} risk: a step-up there is a DENY (if that is the intent, write `{c} = {{ factors = [...], step_up_without_factor = \"deny\" }}`)"),
                    ));
                }
            }
        }

        // The rules.
        if raw.rules.len() > MAX_RULES {
            errors.push(diag((1, 1), None, format!("more than {MAX_RULES} rules")));
        }
        let mut rules = Vec::with_capacity(raw.rules.len());
        let mut names: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for r in raw.rules {
            let name = r.name.get_ref().clone();
            let name_pos = lines.position(r.name.span().start);
            if !is_rule_name(&name) {
                errors.push(diag(
                    name_pos,
                    Some(&name),
                    "rule names are snake_case: lowercase letters, digits and `_`, at most 64"
                        .into(),
                ));
            }
            if let Some(prev) = names.insert(name.clone(), name_pos) {
                errors.push(diag(
                    name_pos,
                    Some(&name),
                    format!("duplicate rule name (first defined at line {})", prev.0),
                ));
            }
            let effect = match (r.effect, r.min_factor, r.score) {
                (EffectName::Deny, None, None) => Some(Effect::Deny),
                (EffectName::Allow, None, None) => Some(Effect::Allow),
                (EffectName::StepUp, f, None) => Some(Effect::StepUp {
                    min_strength: f.map_or(0, Factor::strength),
                }),
                (EffectName::AddScore, None, Some(s))
                    if s.is_finite() && (-1.0..=1.0).contains(&s) =>
                {
                    Some(Effect::AddScore(s))
                }
                (EffectName::AddScore, None, _) => {
                    errors.push(diag(
                        name_pos,
                        Some(&name),
                        "`add_score` needs `score` between -1 and 1".into(),
                    ));
                    None
                }
                (_, Some(_), _) => {
                    errors.push(diag(
                        name_pos,
                        Some(&name),
                        "`min_factor` only goes with `effect = \"step_up\"`".into(),
                    ));
                    None
                }
                (_, _, Some(_)) => {
                    errors.push(diag(
                        name_pos,
                        Some(&name),
                        "`score` only goes with `effect = \"add_score\"`".into(),
                    ));
                    None
                }
            };
            let when_start = string_content_start(text, r.when.span().start);
            let base = lines.position(when_start);
            let program = match cel::compile::<Features>(r.when.get_ref()) {
                Ok(p) => Some(p),
                Err(ds) => {
                    for d in ds {
                        let line = base.0 + d.line as usize - 1;
                        let column = if d.line == 1 {
                            base.1 + d.column as usize - 1
                        } else {
                            d.column as usize
                        };
                        errors.push(diag((line, column), Some(&name), d.message));
                    }
                    None
                }
            };
            let channels = r
                .channels
                .map(|cs| ChannelSet(cs.iter().fold(0, |acc, c| acc | (1 << (*c as u8)))));
            if let (Some(effect), Some(program)) = (effect, program) {
                rules.push(Rule {
                    name,
                    description: r.description,
                    effect,
                    shadow: r.mode == Mode::Shadow,
                    channels,
                    program,
                });
            }
        }

        let version = {
            let hash = hex::encode(&Sha256::digest(text.as_bytes())[..6]);
            match &raw.policy.version {
                Some(v) => format!("{v}@{hash}"),
                None => hash,
            }
        };
        let mut set = RuleSet {
            policy,
            rules,
            version,
            warnings: Vec::new(),
            tests_passed: 0,
        };
        if !errors.is_empty() {
            return Err(LoadError { errors, warnings });
        }

        // The file's own tests, against the compiled set.
        for t in raw.tests {
            let name = t.name.get_ref().clone();
            let pos = lines.position(t.name.span().start);
            let (table, table_pos) = match &t.features {
                Some(s) => (s.get_ref().clone(), lines.position(s.span().start)),
                None => (toml::Table::new(), pos),
            };
            let features = match features_from_table(&table) {
                Ok(f) => f,
                Err(msg) => {
                    errors.push(diag(table_pos, Some(&name), msg));
                    continue;
                }
            };
            let got = set.decide_for_test(&features, t.score, t.enrolled.iter().copied().collect());
            if got.0 != t.expect_action {
                errors.push(diag(
                    pos,
                    Some(&name),
                    format!(
                        "test failed: expected action `{}`, got `{}` (rules fired: [{}])",
                        t.expect_action,
                        got.0,
                        got.1.join(", ")
                    ),
                ));
            }
            if let Some(expected) = t.expect_rules {
                let mut e = expected.clone();
                e.sort();
                let mut g = got.1.clone();
                g.sort();
                if e != g {
                    errors.push(diag(
                        pos,
                        Some(&name),
                        format!(
                            "test failed: expected rules [{}] to fire, got [{}]",
                            expected.join(", "),
                            got.1.join(", ")
                        ),
                    ));
                }
            }
            if errors.is_empty() {
                set.tests_passed += 1;
            }
        }
        if !errors.is_empty() {
            return Err(LoadError { errors, warnings });
        }
        set.warnings = warnings;
        Ok(set)
    }

    /// The action and fired rule names (enforce and shadow) for a test case.
    fn decide_for_test(
        &self,
        f: &Features,
        score: f64,
        enrolled: FactorSet,
    ) -> (Action, Vec<String>) {
        let ev = self.evaluate(f);
        let v = policy::decide(&self.policy, score, &ev.hits, &Context::of(f, enrolled));
        (
            v.action,
            ev.hits.iter().map(|h| h.name.to_string()).collect(),
        )
    }

    /// Explains a feature struct against these rules: which fire, which do
    /// not, and the fields each reads (for `riskgate rules explain`).
    pub fn explain(&self, f: &Features, score: f64) -> Explanation {
        let ev = self.evaluate(f);
        let fired: Vec<&str> = ev.hits.iter().map(|h| h.name).collect();
        let rules = self
            .rules
            .iter()
            .map(|r| RuleExplanation {
                name: r.name.clone(),
                fired: fired.contains(&r.name.as_str()),
                shadow: r.shadow,
                applies: r.channels.is_none_or(|c| c.contains(f.attempt.channel)),
                error: ev
                    .errors
                    .iter()
                    .find(|(n, _)| *n == r.name)
                    .map(|(_, e)| e.to_string()),
                fields: r
                    .fields_used()
                    .into_iter()
                    .map(|p| (p.to_string(), schema::render(f, p)))
                    .collect(),
            })
            .collect();
        let v = policy::decide(
            &self.policy,
            score,
            &ev.hits,
            &Context::of(f, FactorSet::EMPTY),
        );
        Explanation {
            action: v.action,
            score: v.score,
            rules,
        }
    }
}

/// The result of [`RuleSet::explain`].
#[derive(Debug, serde::Serialize)]
pub struct Explanation {
    pub action: Action,
    pub score: f64,
    pub rules: Vec<RuleExplanation>,
}

/// One rule in an [`Explanation`].
#[derive(Debug, serde::Serialize)]
pub struct RuleExplanation {
    pub name: String,
    pub fired: bool,
    pub shadow: bool,
    /// False when the rule is limited to other channels.
    pub applies: bool,
    pub error: Option<String>,
    /// The fields the rule reads, with their values.
    pub fields: Vec<(String, String)>,
}

/// Builds features from a partial table of dotted keys, checking every key
/// against the schema first so a typo is an error, not a default.
pub fn features_from_table(t: &toml::Table) -> Result<Features, String> {
    let mut paths = Vec::new();
    flatten("", t, &mut paths);
    let mut problems = Vec::new();
    for p in &paths {
        if !schema::is_settable(p) {
            problems.push(match schema::suggest(p) {
                Some(s) => format!("unknown feature `{p}` (did you mean `{s}`?)"),
                None => format!("unknown feature `{p}`"),
            });
        }
    }
    if !problems.is_empty() {
        return Err(problems.join("; "));
    }
    toml::Value::Table(t.clone())
        .try_into::<Features>()
        .map_err(|e| format!("invalid features: {}", e.message().trim()))
}

fn flatten(prefix: &str, t: &toml::Table, out: &mut Vec<String>) {
    for (k, v) in t {
        let path = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(inner) => flatten(&path, inner, out),
            _ => out.push(path),
        }
    }
}

fn is_rule_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn single(origin: &str, message: String) -> LoadError {
    LoadError {
        errors: vec![Diagnostic {
            origin: origin.into(),
            line: 1,
            column: 1,
            item: None,
            message,
        }],
        warnings: Vec::new(),
    }
}

/// Where the content of a TOML string starting at `span_start` begins.
fn string_content_start(text: &str, span_start: usize) -> usize {
    let rest = text.get(span_start..).unwrap_or("");
    for (delim, skip_newline) in [("\"\"\"", true), ("'''", true), ("\"", false), ("'", false)] {
        if rest.starts_with(delim) {
            let mut start = span_start + delim.len();
            if skip_newline {
                let after = text.get(start..).unwrap_or("");
                if after.starts_with("\r\n") {
                    start += 2;
                } else if after.starts_with('\n') {
                    start += 1;
                }
            }
            return start;
        }
    }
    span_start
}

/// Byte offset → 1-based (line, column in chars).
struct LineIndex<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { text, starts }
    }

    fn position(&self, offset: usize) -> (usize, usize) {
        let line = match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.starts.get(line).copied().unwrap_or(0);
        let col = self
            .text
            .get(start..offset.min(self.text.len()))
            .map_or(0, |s| s.chars().count());
        (line + 1, col + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[policy]
[policy.thresholds]
medium = 0.3
high = 0.7
[policy.step_up]
medium = ["totp", "webauthn"]
high = ["webauthn"]
[policy.channels]
web = ["webauthn", "totp"]
mobile_app = ["webauthn"]
call_center = ["sms_otp"]
kiosk = ["push"]
api = ["totp"]
"#;

    fn with_rules(rules: &str) -> Result<RuleSet, LoadError> {
        RuleSet::parse(&format!("{POLICY}{rules}"), "t.toml")
    }

    #[test]
    fn the_shipped_file_loads_without_a_warning() {
        let set = RuleSet::embedded().unwrap();
        assert!(set.warnings.is_empty(), "{:?}", set.warnings);
    }

    #[test]
    fn a_channel_gap_warns_at_its_entry_unless_it_is_declared_on_purpose() {
        let gap = POLICY.replace(
            "call_center = [\"sms_otp\"]",
            "call_center = [\"knowledge_check\"]",
        );
        let set = RuleSet::parse(&gap, "t.toml").unwrap();
        let line = gap
            .lines()
            .position(|l| l.starts_with("call_center"))
            .unwrap()
            + 1;
        let w: Vec<_> = set
            .warnings
            .iter()
            .filter(|d| d.message.contains("`call_center`"))
            .collect();
        assert_eq!(w.len(), 2, "{:?}", set.warnings);
        assert!(w.iter().all(|d| (d.line, d.column) == (line, 1)), "{w:?}");
        let meant = POLICY.replace(
            "call_center = [\"sms_otp\"]",
            "call_center = { factors = [\"knowledge_check\"], step_up_without_factor = \"deny\" }",
        );
        let set = RuleSet::parse(&meant, "t.toml").unwrap();
        assert!(
            set.warnings
                .iter()
                .all(|d| !d.message.contains("`call_center`")),
            "{:?}",
            set.warnings
        );
        // An undeclared channel warns at the channels table.
        let missing = POLICY.replace("kiosk = [\"push\"]\n", "");
        let set = RuleSet::parse(&missing, "t.toml").unwrap();
        let d = set
            .warnings
            .iter()
            .find(|d| d.message.contains("`kiosk`"))
            .unwrap();
        assert!(d.line > 1, "{d}");
    }

    #[test]
    fn shipped_rules_load_and_their_tests_pass() {
        let set = RuleSet::embedded().unwrap();
        assert!(set.rules.len() >= 5);
        assert!(set.tests_passed >= 10, "{}", set.tests_passed);
        assert!(set.version.starts_with("default-"));
    }

    #[test]
    fn a_misspelled_field_is_an_error_with_position_and_suggestion() {
        let e = with_rules(
            "[[rule]]\nname = \"r\"\nwhen = \"geo.contry == 'SE'\"\neffect = \"deny\"\n",
        )
        .err()
        .unwrap();
        let d = &e.errors[0];
        let line_of_when = POLICY.lines().count() + 3;
        assert_eq!((d.line, d.column), (line_of_when, 9), "{d}");
        assert!(d.message.contains("geo.country"), "{d}");
        assert_eq!(d.item.as_deref(), Some("r"));
    }

    #[test]
    fn every_error_is_reported() {
        let e = with_rules(
            "[[rule]]\nname = \"a\"\nwhen = \"velocity.user_failures_1h > '3'\"\neffect = \"deny\"\n\
             [[rule]]\nname = \"b\"\nwhen = \"device.knwn\"\neffect = \"deny\"\n\
             [[rule]]\nname = \"Bad Name\"\nwhen = \"true\"\neffect = \"deny\"\n\
             [[rule]]\nname = \"c\"\nwhen = \"1 +\"\neffect = \"add_score\"\n",
        )
        .err()
        .unwrap();
        let items: Vec<_> = e.errors.iter().filter_map(|d| d.item.clone()).collect();
        for expected in ["a", "b", "Bad Name", "c"] {
            assert!(
                items.iter().any(|i| i == expected),
                "{expected} missing: {e}"
            );
        }
    }

    #[test]
    fn failing_file_tests_reject_the_file() {
        let e = with_rules(
            "[[rule]]\nname = \"r\"\nwhen = \"velocity.ip_failures_1h > 5\"\neffect = \"deny\"\n\
             [[test]]\nname = \"t\"\nfeatures = { velocity.ip_failures_1h = 3 }\nexpect_action = \"deny\"\n",
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .contains("expected action `deny`, got `allow`"),
            "{e}"
        );
    }

    #[test]
    fn a_typo_in_test_features_is_an_error() {
        let e = with_rules(
            "[[test]]\nname = \"t\"\nfeatures = { velocity.ip_failure_1h = 3 }\nexpect_action = \"allow\"\n",
        )
        .err()
        .unwrap();
        assert!(
            e.to_string()
                .contains("did you mean `velocity.ip_failures_1h`"),
            "{e}"
        );
    }

    #[test]
    fn toml_syntax_errors_have_positions() {
        let e = RuleSet::parse("[policy\nx = 1", "bad.toml").err().unwrap();
        assert_eq!(e.errors[0].origin, "bad.toml");
        assert_eq!(e.errors[0].line, 1);
    }

    #[test]
    fn shadow_rules_are_reported_but_do_not_act() {
        let set = with_rules(
            "[[rule]]\nname = \"s\"\nwhen = \"device.users_24h > 1\"\neffect = \"deny\"\nmode = \"shadow\"\n\
             [[test]]\nname = \"t\"\nfeatures = { device.users_24h = 3 }\nexpect_action = \"allow\"\nexpect_rules = [\"s\"]\n",
        )
        .unwrap();
        assert_eq!(set.tests_passed, 1);
    }

    proptest::proptest! {
        #[test]
        fn garbage_never_panics_the_loader(s in "\\PC{0,400}") {
            let _ = RuleSet::parse(&s, "fuzz.toml");
            let _ = with_rules(&format!("[[rule]]\nname = \"r\"\nwhen = {s:?}\neffect = \"deny\"\n"));
        }
    }
}
