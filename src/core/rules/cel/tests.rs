#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
struct Feat {
    channel: String,
    known: bool,
    users_24h: i64,
    ip_failures: i64,
    user_failures: i64,
    country: String,
    speed: f64,
    email: String,
    score: f64,
}

impl Default for Feat {
    fn default() -> Self {
        Feat {
            channel: "web".into(),
            known: false,
            users_24h: 3,
            ip_failures: 25,
            user_failures: 2,
            country: "US".into(),
            speed: 950.0,
            email: "alice@example.com".into(),
            score: 0.75,
        }
    }
}

static FIELDS: &[FieldDef<Feat>] = &[
    FieldDef {
        path: "attempt.channel",
        ty: Type::String,
        get: |f| Value::Str(&f.channel),
        doc: "login channel",
    },
    FieldDef {
        path: "device.known",
        ty: Type::Bool,
        get: |f| Value::Bool(f.known),
        doc: "device seen before",
    },
    FieldDef {
        path: "device.users_24h",
        ty: Type::Int,
        get: |f| Value::Int(f.users_24h),
        doc: "distinct users on device",
    },
    FieldDef {
        path: "velocity.ip_failures_1h",
        ty: Type::Int,
        get: |f| Value::Int(f.ip_failures),
        doc: "",
    },
    FieldDef {
        path: "velocity.user_failures_1h",
        ty: Type::Int,
        get: |f| Value::Int(f.user_failures),
        doc: "",
    },
    FieldDef {
        path: "geo.country",
        ty: Type::String,
        get: |f| Value::Str(&f.country),
        doc: "",
    },
    FieldDef {
        path: "geo.speed_kmh",
        ty: Type::Double,
        get: |f| Value::Double(f.speed),
        doc: "",
    },
    FieldDef {
        path: "user.email",
        ty: Type::String,
        get: |f| Value::Str(&f.email),
        doc: "",
    },
    FieldDef {
        path: "score",
        ty: Type::Double,
        get: |f| Value::Double(f.score),
        doc: "",
    },
    FieldDef {
        path: "debug.broken",
        ty: Type::Int,
        get: |_| Value::Bool(true),
        doc: "accessor lies about its type",
    },
];

impl Schema for Feat {
    fn fields() -> &'static [FieldDef<Self>] {
        FIELDS
    }
}

fn prog(src: &str) -> Program<Feat> {
    compile::<Feat>(src).unwrap_or_else(|d| panic!("{src:?} failed to compile: {d:#?}"))
}

fn ev_with(src: &str, f: &Feat) -> Result<bool, EvalError> {
    prog(src).eval(f)
}

fn ev(src: &str) -> Result<bool, EvalError> {
    ev_with(src, &Feat::default())
}

#[track_caller]
fn yes(src: &str) {
    assert_eq!(ev(src), Ok(true), "{src}");
}

#[track_caller]
fn no(src: &str) {
    assert_eq!(ev(src), Ok(false), "{src}");
}

fn errs(src: &str) -> Vec<Diagnostic> {
    match compile::<Feat>(src) {
        Ok(_) => panic!("{src:?} unexpectedly compiled"),
        Err(d) => d,
    }
}

/// Exactly one diagnostic at (line, col) whose message contains `msg`.
#[track_caller]
fn err1(src: &str, line: u32, col: u32, msg: &str) {
    let d = errs(src);
    assert_eq!(d.len(), 1, "{src:?}: expected one diagnostic, got {d:#?}");
    assert_eq!((d[0].line, d[0].column), (line, col), "{src:?}: {d:#?}");
    assert!(
        d[0].message.contains(msg),
        "{src:?}: message {:?} does not contain {msg:?}",
        d[0].message
    );
}

// ---------------------------------------------------------------- literals

#[test]
fn literals() {
    yes("true");
    no("false");
    yes("1 == 1");
    yes("0x1F == 31");
    yes("1.5 == 1.5");
    yes("1e3 == 1000.0");
    yes("2.5E-1 == 0.25");
    yes(".5 == 0.5");
    yes("-9223372036854775808 < 0");
    yes("9223372036854775807 > 0");
    yes("-1.5 < 0.0");
    yes("'abc' == \"abc\"");
    yes(r#"'a\\b'.size() == 3"#);
    yes(r#""\"" == '"'"#);
    yes(r#"'\'' == "'""#);
    yes(r#"'\n'.size() == 1 && '\t' != '\n' && '\r'.size() == 1"#);
    yes(r#"'\u00e9' == 'é'"#);
    yes("'' == \"\"");
}

#[test]
fn comments_and_multiline() {
    yes("// leading comment\ndevice.known == false // trailing\n  && true");
    yes("device.users_24h == 3\n&&\n  geo.country == 'US'");
}

// ------------------------------------------------------------------ fields

#[test]
fn field_reads() {
    let f = Feat::default();
    assert_eq!(ev_with("attempt.channel == 'web'", &f), Ok(true));
    assert_eq!(ev_with("device.known", &f), Ok(false));
    assert_eq!(ev_with("!device.known", &f), Ok(true));
    assert_eq!(ev_with("device.users_24h == 3", &f), Ok(true));
    assert_eq!(ev_with("velocity.ip_failures_1h == 25", &f), Ok(true));
    assert_eq!(ev_with("geo.speed_kmh == 950.0", &f), Ok(true));
    assert_eq!(ev_with("score < 0.8", &f), Ok(true));
    let f2 = Feat {
        known: true,
        channel: "api".into(),
        ..Feat::default()
    };
    assert_eq!(ev_with("device.known", &f2), Ok(true));
    assert_eq!(ev_with("attempt.channel == 'web'", &f2), Ok(false));
}

#[test]
fn lying_accessor_is_an_error_not_a_panic() {
    assert_eq!(
        ev("debug.broken == 1"),
        Err(EvalError::FieldType {
            path: "debug.broken",
            expected: Type::Int
        })
    );
    assert_eq!(
        ev("debug.broken + 1 > velocity.ip_failures_1h"),
        Err(EvalError::FieldType {
            path: "debug.broken",
            expected: Type::Int
        })
    );
}

// ------------------------------------------------------------- comparisons

#[test]
fn comparisons_int() {
    yes("velocity.ip_failures_1h == 25");
    no("velocity.ip_failures_1h != 25");
    yes("velocity.ip_failures_1h < 26");
    no("velocity.ip_failures_1h < 25");
    yes("velocity.ip_failures_1h <= 25");
    yes("velocity.ip_failures_1h > 24");
    no("velocity.ip_failures_1h > 25");
    yes("velocity.ip_failures_1h >= 25");
    yes("3 < velocity.ip_failures_1h");
    yes("device.users_24h < velocity.ip_failures_1h");
}

#[test]
fn comparisons_double_string_bool() {
    yes("geo.speed_kmh > 900.5");
    yes("geo.speed_kmh >= 950.0 && geo.speed_kmh <= 950.0");
    yes("score != 0.5");
    yes("attempt.channel < 'xyz' && attempt.channel > 'api'");
    yes("attempt.channel <= 'web' && attempt.channel >= 'web'");
    yes("geo.country != attempt.channel");
    yes("false < true && true >= false && device.known == false");
    yes("device.known != true");
}

#[test]
fn int_double_promotion() {
    yes("geo.speed_kmh > 900");
    yes("900 < geo.speed_kmh");
    yes("geo.speed_kmh == 950");
    yes("1 + 0.5 == 1.5");
    yes("velocity.ip_failures_1h * 0.5 == 12.5");
    yes("velocity.ip_failures_1h / 2.0 == 12.5");
    yes("(device.known ? 1 : 2.5) == 2.5");
    yes("device.users_24h in [1.5, 3]");
    yes("geo.speed_kmh in [1, 950]");
}

// -------------------------------------------------------------- arithmetic

#[test]
fn arithmetic_int() {
    yes("velocity.ip_failures_1h + 5 == 30");
    yes("velocity.ip_failures_1h - 30 == -5");
    yes("velocity.ip_failures_1h * 2 == 50");
    yes("velocity.ip_failures_1h / 2 == 12");
    yes("velocity.ip_failures_1h % 7 == 4");
    yes("-velocity.ip_failures_1h == -25");
    yes("-7 / 2 == -3 && -7 % 2 == -1");
    yes("- -3 == 3");
}

#[test]
fn arithmetic_double() {
    yes("geo.speed_kmh + 50.0 == 1000.0");
    yes("geo.speed_kmh - 950.0 == 0.0");
    yes("score * 4.0 == 3.0");
    yes("score / 0.25 == 3.0");
    yes("-score == -0.75");
    yes("score / 0.0 > 1e300");
}

#[test]
fn string_concat() {
    yes("attempt.channel + '-' + geo.country == 'web-US'");
    yes("'a' + 'b' == 'ab'");
    yes("(attempt.channel + geo.country).size() == 5");
}

#[test]
fn runtime_errors() {
    let zero = Feat {
        users_24h: 0,
        ..Feat::default()
    };
    assert_eq!(
        ev_with("velocity.ip_failures_1h / device.users_24h > 1", &zero),
        Err(EvalError::DivisionByZero)
    );
    assert_eq!(
        ev_with("velocity.ip_failures_1h % device.users_24h > 1", &zero),
        Err(EvalError::ModuloByZero)
    );
    assert_eq!(
        ev("velocity.ip_failures_1h * 9223372036854775807 > 0"),
        Err(EvalError::Overflow)
    );
    assert_eq!(
        ev("velocity.ip_failures_1h + 9223372036854775807 > 0"),
        Err(EvalError::Overflow)
    );
    assert_eq!(
        ev("-velocity.ip_failures_1h - 9223372036854775807 < 0"),
        Err(EvalError::Overflow)
    );
    let min = Feat {
        users_24h: i64::MIN,
        ..Feat::default()
    };
    assert_eq!(
        ev_with("device.users_24h / -1 < 0", &min),
        Err(EvalError::Overflow)
    );
    assert_eq!(
        ev_with("-device.users_24h < 0", &min),
        Err(EvalError::Overflow)
    );
    // Constant errors are reported at evaluation, as in CEL.
    assert_eq!(ev("1 / 0 == 1"), Err(EvalError::DivisionByZero));
    assert_eq!(ev("-(-9223372036854775808) > 0"), Err(EvalError::Overflow));
    assert_eq!(EvalError::DivisionByZero.to_string(), "division by zero");
}

// ------------------------------------------------------ logic & precedence

#[test]
fn precedence() {
    yes("true || false && false");
    no("(true || false) && false");
    yes("!false && true");
    no("!(false || true)");
    yes("1 + 2 * 3 == 7");
    yes("(1 + 2) * 3 == 9");
    yes("10 - 2 - 3 == 5");
    yes("100 / 10 / 5 == 2");
    yes("-2 * 3 == -6");
    yes("1 + 1 == 2 && 2 < 3 || false");
    yes("(false ? 1 : true ? 2 : 3) == 2");
    yes("device.known ? false : true");
    yes("!device.known ? velocity.ip_failures_1h > 20 : false");
    yes("7 % 4 * 2 == 6");
}

#[test]
fn short_circuit() {
    let f = Feat {
        users_24h: 0,
        known: false,
        ..Feat::default()
    };
    let div = "velocity.ip_failures_1h / device.users_24h > 1";
    assert_eq!(ev_with(&format!("device.known && {div}"), &f), Ok(false));
    assert_eq!(ev_with(&format!("!device.known || {div}"), &f), Ok(true));
    // CEL commutative error semantics.
    assert_eq!(ev_with(&format!("{div} && device.known"), &f), Ok(false));
    assert_eq!(ev_with(&format!("{div} || !device.known"), &f), Ok(true));
    assert_eq!(
        ev_with(&format!("{div} && true && device.known == false"), &f),
        Err(EvalError::DivisionByZero)
    );
    assert_eq!(
        ev_with(&format!("{div} && !device.known && 1 == 1 && true"), &f),
        Err(EvalError::DivisionByZero)
    );
    assert_eq!(
        ev_with(
            &format!("{div} && !device.known && geo.country == 'FR'"),
            &f
        ),
        Ok(false)
    );
    assert_eq!(
        ev_with(&format!("false || {div} || device.known"), &f),
        Err(EvalError::DivisionByZero)
    );
    // Ternary only evaluates the chosen branch.
    assert_eq!(
        ev_with(&format!("device.known ? {div} : true"), &f),
        Ok(true)
    );
    // Constant folding of `&&`/`||`.
    yes("true || 1 / 0 == 1");
    no("false && 1 / 0 == 1");
    no("1 / 0 == 1 && false");
}

// ---------------------------------------------------------------------- in

#[test]
fn in_lists() {
    yes("attempt.channel in ['web', 'api']");
    no("attempt.channel in ['api', 'sms']");
    no("attempt.channel in []");
    yes("attempt.channel in ['web']");
    let big = "['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'web']";
    yes(&format!("attempt.channel in {big}"));
    yes(&format!("!(geo.country in {big})"));
    yes("velocity.ip_failures_1h in [1, 25, 3]");
    yes("velocity.ip_failures_1h in [25, 3]");
    no("velocity.ip_failures_1h in [-25]");
    yes("device.known in [false]");
    yes("geo.speed_kmh in [950.0, 1.5]");
    yes("'web' in ['web', 'api',]");
    yes("(attempt.channel + '') in ['web']");
    yes("attempt.channel in ['web', 'api'] && geo.country in ['US']");
}

// --------------------------------------------------------------- functions

#[test]
fn string_functions() {
    yes("size(attempt.channel) == 3");
    yes("attempt.channel.size() == 3");
    yes("'héllo'.size() == 5");
    yes("size('') == 0");
    yes("user.email.endsWith('@example.com')");
    no("user.email.endsWith('@example.org')");
    yes("user.email.startsWith('alice')");
    yes("user.email.contains('@')");
    no("user.email.contains('bob')");
    yes("'abc'.startsWith('')");
    yes("user.email.startsWith(attempt.channel) == false");
    yes("user.email.contains(user.email)");
    yes("(device.known ? attempt.channel : geo.country) == 'US'");
    yes("(device.known ? 'x' : 'y').size() == 1");
}

#[test]
fn fields_used_sorted_dedup() {
    let p = prog(
        "velocity.ip_failures_1h >= 20 && device.known == false && \
         attempt.channel in ['web'] && velocity.ip_failures_1h < 1000",
    );
    assert_eq!(
        p.fields_used(),
        vec!["attempt.channel", "device.known", "velocity.ip_failures_1h"]
    );
    assert!(prog("true").fields_used().is_empty());
}

#[test]
fn program_is_send_sync() {
    fn assert_send_sync<X: Send + Sync>() {}
    assert_send_sync::<Program<Feat>>();
    let p = std::sync::Arc::new(prog("device.users_24h > 1"));
    let p2 = p.clone();
    let h = std::thread::spawn(move || p2.eval(&Feat::default()));
    assert_eq!(h.join().unwrap(), Ok(true));
    assert_eq!(p.eval(&Feat::default()), Ok(true));
}

// ------------------------------------------------------------- diagnostics

#[test]
fn diagnostic_display() {
    let d = errs("geo.contry == 'US'");
    assert_eq!(
        d[0].to_string(),
        "1:1: unknown field `geo.contry`; did you mean `geo.country`?"
    );
}

#[test]
fn unknown_field_suggestions() {
    err1("geo.contry == 'US'", 1, 1, "did you mean `geo.country`?");
    err1(
        "true && velocity.user_failure_1h > 3",
        1,
        9,
        "unknown field `velocity.user_failure_1h`; did you mean `velocity.user_failures_1h`?",
    );
    err1("country == 'US'", 1, 1, "did you mean `geo.country`?");
    err1("Device.Known", 1, 1, "did you mean `device.known`?");
    let d = errs("foo.bar == 1");
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].message, "unknown field `foo.bar`");
    err1("velocity > 3", 1, 1, "`velocity` is a group of fields");
    err1(
        "geo.country.code == 'x'",
        1,
        13,
        "field `geo.country` is of type string and has no member `code`",
    );
    err1(
        "geo.country.size == 2",
        1,
        13,
        "did you mean the method `size()`?",
    );
}

#[test]
fn type_mismatch() {
    err1(
        "velocity.user_failures_1h > \"3\"",
        1,
        27,
        "type mismatch: operator `>` cannot be applied to int and string",
    );
    err1("geo.country == 1", 1, 13, "string and int");
    err1("device.known + 1 == 2", 1, 14, "bool and int");
    err1(
        "geo.speed_kmh % 2.0 == 1.0",
        1,
        15,
        "`%` cannot be applied to double and double",
    );
    err1("attempt.channel - 'a' == ''", 1, 17, "string and string");
    err1(
        "!velocity.ip_failures_1h",
        1,
        1,
        "operator `!` cannot be applied to int",
    );
    err1(
        "-geo.country == 'x'",
        1,
        1,
        "operator `-` cannot be applied to string",
    );
    err1(
        "device.known && 1",
        1,
        17,
        "operands of `&&` must be bool, found int",
    );
    err1(
        "'x' || true",
        1,
        1,
        "operands of `||` must be bool, found string",
    );
    err1(
        "velocity.ip_failures_1h ? true : false",
        1,
        1,
        "condition of `? :` must be bool, found int",
    );
    err1(
        "(device.known ? 1 : 'a') == 1",
        1,
        15,
        "branches of `? :` have different types: int and string",
    );
    err1("null == 1", 1, 1, "`null` is not supported");
}

#[test]
fn non_bool_rule() {
    err1("1 + 2", 1, 1, "rule must be a bool expression, found int");
    err1(
        "  geo.country",
        1,
        3,
        "rule must be a bool expression, found string",
    );
    err1(
        "\n(score)",
        2,
        1,
        "rule must be a bool expression, found double",
    );
}

#[test]
fn in_diagnostics() {
    err1(
        "attempt.channel in geo.country",
        1,
        20,
        "must be a list literal",
    );
    err1(
        "attempt.channel in ['web', 1]",
        1,
        28,
        "list element is int, but the left-hand side of `in` is string",
    );
    err1(
        "attempt.channel in ['web', geo.country]",
        1,
        28,
        "elements of an `in` list must be literals",
    );
    err1(
        "['a'] == 'a'",
        1,
        1,
        "list literals are only supported on the right-hand side of `in`",
    );
    err1(
        "velocity.ip_failures_1h in [true]",
        1,
        29,
        "list element is bool",
    );
}

#[test]
fn function_diagnostics() {
    err1("foo(1)", 1, 1, "unknown function `foo`");
    err1(
        "sise(geo.country) == 2",
        1,
        1,
        "unknown function `sise`; did you mean `size`?",
    );
    err1("startsWith(geo.country, 'U')", 1, 1, "it is a method");
    err1(
        "geo.country.lower() == 'us'",
        1,
        13,
        "unknown method `lower` on string",
    );
    err1(
        "geo.country.startswith('U')",
        1,
        13,
        "did you mean `startsWith`?",
    );
    err1(
        "size() == 0",
        1,
        1,
        "function `size` expects 1 argument, found 0",
    );
    err1(
        "size('a', 'b') == 0",
        1,
        1,
        "function `size` expects 1 argument, found 2",
    );
    err1(
        "geo.country.size(1) == 0",
        1,
        13,
        "method `size` expects 0 arguments, found 1",
    );
    err1(
        "geo.country.startsWith() ",
        1,
        13,
        "method `startsWith` expects 1 argument, found 0",
    );
    err1(
        "geo.country.contains('a', 'b')",
        1,
        13,
        "expects 1 argument, found 2",
    );
    err1(
        "size(3) == 1",
        1,
        6,
        "argument of `size` must be a string, found int",
    );
    err1(
        "velocity.ip_failures_1h.size() == 1",
        1,
        1,
        "receiver of `size()` must be a string, found int",
    );
    err1(
        "geo.country.endsWith(1)",
        1,
        22,
        "argument of `endsWith` must be a string, found int",
    );
    err1(
        "score.contains('1')",
        1,
        1,
        "receiver of `contains` must be a string, found double",
    );
    err1(
        "size(geo.country).x == 1",
        1,
        19,
        "cannot select field `x` on a value of type int",
    );
}

#[test]
fn syntax_diagnostics() {
    err1(
        "device.known &&",
        1,
        16,
        "unexpected end of expression, expected an expression",
    );
    err1(
        "(device.known",
        1,
        14,
        "expected `)` (to close the `(` at 1:1)",
    );
    err1(
        "device.known true",
        1,
        14,
        "unexpected `true` after a complete expression",
    );
    err1(
        "device.known && && true",
        1,
        17,
        "unexpected `&&`, expected an expression",
    );
    err1("geo.country.", 1, 13, "expected a field or method name");
    err1("size(geo.country", 1, 17, "expected `,` or `)`");
    err1("attempt.channel in ['a' 'b']", 1, 25, "expected `,` or `]`");
    err1("true ? 1", 1, 9, "expected `:`");
    err1(
        "{'a': 1}",
        1,
        1,
        "map and message literals are not supported",
    );
    err1("geo.country[0] == 'U'", 1, 12, "indexing");
    err1("", 1, 1, "unexpected end of expression");
    err1("   \n  ", 2, 3, "unexpected end of expression");
}

#[test]
fn lexical_diagnostics() {
    err1("geo.country == 'US", 1, 16, "unterminated string literal");
    let d = errs("geo.country == 'U\nS'");
    assert_eq!((d[0].line, d[0].column), (1, 16));
    assert!(d[0].message.contains("unterminated string literal"));
    err1(
        r"geo.country == 'U\qS'",
        1,
        18,
        "invalid escape sequence `\\q`",
    );
    err1(r"geo.country == '\u12'", 1, 17, "invalid unicode escape");
    err1(
        "device.users_24h == 99999999999999999999",
        1,
        21,
        "integer literal out of range",
    );
    err1(
        "device.users_24h == 9223372036854775808",
        1,
        21,
        "integer literal out of range",
    );
    err1(
        "device.users_24h == 3u",
        1,
        21,
        "unsigned integer literals are not supported",
    );
    err1("device.users_24h == 3abc", 1, 21, "invalid number literal");
    err1("score == 1e", 1, 10, "invalid exponent");
    err1("score == 1e999", 1, 10, "double literal out of range");
    err1("device.known = true", 1, 14, "did you mean `==`?");
    err1("device.known & true", 1, 14, "did you mean `&&`?");
    err1("device.known | true", 1, 14, "did you mean `||`?");
    err1("device.known # true", 1, 14, "unexpected character `#`");
}

#[test]
fn positions_count_chars_and_lines() {
    err1("'é' == geo.contry", 1, 8, "did you mean `geo.country`?");
    err1(
        "device.known &&\n    geo.contry == 'US'",
        2,
        5,
        "did you mean `geo.country`?",
    );
    err1(
        "device.known &&\n\tvelocity.ip_failures_1h > 'x'",
        2,
        26,
        "int and string",
    );
}

#[test]
fn multiple_diagnostics() {
    let d = errs(
        "geo.contry == 'US' && velocity.ip_failures_1h > 'x'\n  && foo(1) && geo.country.lower() == 'a'\n  && (device.known ? 1 : 'a') == 1",
    );
    let got: Vec<(u32, u32)> = d.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        got,
        vec![(1, 1), (1, 47), (2, 6), (2, 28), (3, 20)],
        "{d:#?}"
    );
    assert!(d[0].message.contains("did you mean `geo.country`"));
    assert!(d[1].message.contains("int and string"));
    assert!(d[2].message.contains("unknown function `foo`"));
    assert!(d[3].message.contains("unknown method `lower`"));
    assert!(d[4].message.contains("different types"));

    // Lexical errors and type errors together.
    let d = errs("device.users_24h == 99999999999999999999 || geo.contry == 'x' || score == 'y'");
    assert_eq!(d.len(), 3, "{d:#?}");
    assert_eq!((d[0].line, d[0].column), (1, 21));
    assert_eq!((d[1].line, d[1].column), (1, 45));
    assert_eq!((d[2].line, d[2].column), (1, 72));

    // Both operands of a binary operator are checked.
    let d = errs("geo.contry == velocity.ip_failure_1h");
    assert_eq!(d.len(), 2, "{d:#?}");

    // No follow-on error for an expression that already failed.
    let d = errs("geo.contry + 1 > 'a' && true");
    assert_eq!(d.len(), 1, "{d:#?}");
}

#[test]
fn diagnostics_are_capped() {
    let d = errs(&"#".repeat(200));
    assert_eq!(d.len(), MAX_DIAGNOSTICS);
}

// ------------------------------------------------------------------ limits

#[test]
fn max_source_len() {
    let long = format!("{}true", " ".repeat(MAX_SOURCE_LEN));
    let d = errs(&long);
    assert_eq!(d.len(), 1);
    assert!(d[0].message.contains("too long"));
    // Exactly at the limit is fine.
    let ok = format!("{}true", " ".repeat(MAX_SOURCE_LEN - 4));
    assert_eq!(
        compile::<Feat>(&ok)
            .map(|p| p.eval(&Feat::default()))
            .unwrap(),
        Ok(true)
    );
}

#[test]
fn max_depth() {
    let nested = |n: usize| format!("{}true{}", "(".repeat(n), ")".repeat(n));
    yes(&nested(20));
    let d = errs(&nested(40));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");
    assert_eq!(d.len(), 1);
    let d = errs(&nested(2000));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");

    yes(&format!("{}true", "!!".repeat(10)));
    let d = errs(&format!("{}true", "!".repeat(1000)));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");
    let d = errs(&format!("{}1 == 1", "-".repeat(1000)));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");

    yes(&format!("{}1 == 20", "1 + ".repeat(19)));
    let d = errs(&format!("{}1 == 1", "1 + ".repeat(1000)));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");

    let d = errs(&format!("{}1{}", "[".repeat(1000), "]".repeat(1000)));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");
    let d = errs(&format!(
        "{}'a'{} == 1",
        "size(".repeat(300),
        ")".repeat(300)
    ));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");
    let d = errs(&format!("{}true", "true ? true : ".repeat(200)));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");
    let d = errs(&format!("geo.country{} == 1", ".size()".repeat(500)));
    assert!(d[0].message.contains("nested too deeply"), "{d:#?}");
}

#[test]
fn long_flat_logic_chains_are_fine() {
    let clauses: Vec<String> = (0..100)
        .map(|i| format!("velocity.ip_failures_1h == {i}"))
        .collect();
    let src = clauses.join(" || ");
    assert!(src.len() < MAX_SOURCE_LEN);
    yes(&src);
    let src = clauses.join(" && ");
    no(&src);
}

// --------------------------------------------------------------- proptests

const VOCAB: &[&str] = &[
    "attempt.channel",
    "device.known",
    "device.users_24h",
    "velocity.ip_failures_1h",
    "geo.country",
    "geo.speed_kmh",
    "score",
    "debug.broken",
    "geo",
    ".",
    "size",
    "startsWith",
    "endsWith",
    "contains",
    "true",
    "false",
    "null",
    "in",
    "0",
    "1",
    "-1",
    "9223372036854775807",
    "-9223372036854775808",
    "1.5",
    "1e3",
    "0.0",
    "'web'",
    "\"x\"",
    "''",
    "(",
    ")",
    "[",
    "]",
    ",",
    "?",
    ":",
    "!",
    "-",
    "+",
    "*",
    "/",
    "%",
    "==",
    "!=",
    "<",
    "<=",
    ">",
    ">=",
    "&&",
    "||",
    "\n",
    "'",
    "\\",
    "{",
    "}",
    "=",
    "&",
    "|",
    "#",
    "é",
    "0x",
    "1u",
];

fn feats() -> Vec<Feat> {
    vec![
        Feat::default(),
        Feat {
            channel: String::new(),
            known: true,
            users_24h: 0,
            ip_failures: i64::MIN,
            user_failures: i64::MAX,
            country: "ÉÉ".into(),
            speed: f64::NAN,
            email: String::new(),
            score: f64::INFINITY,
        },
        Feat {
            users_24h: -1,
            ip_failures: -1,
            ..Feat::default()
        },
    ]
}

fn exercise(src: &str) {
    if let Ok(p) = compile::<Feat>(src) {
        for f in feats() {
            let _ = p.eval(&f);
        }
        let _ = p.fields_used();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        exercise(&s);
    }

    #[test]
    fn ascii_noise_never_panics(s in "[ -~\n]{0,200}") {
        exercise(&s);
    }

    #[test]
    fn token_soup_never_panics(toks in prop::collection::vec(prop::sample::select(VOCAB), 0..60)) {
        exercise(&toks.join(" "));
        exercise(&toks.concat());
    }

    #[test]
    fn generated_rules_evaluate(
        a in -1000i64..1000,
        b in -1000i64..1000,
        op in prop::sample::select(&["==", "!=", "<", "<=", ">", ">="][..]),
        arith in prop::sample::select(&["+", "-", "*", "/", "%"][..]),
    ) {
        let src = format!("velocity.ip_failures_1h {arith} {a} {op} {b} || device.users_24h {arith} {b} {op} {a}");
        let p = compile::<Feat>(&src);
        prop_assert!(p.is_ok(), "{src}: {p:?}");
        for f in feats() {
            let _ = p.as_ref().map(|p| p.eval(&f));
        }
    }
}
