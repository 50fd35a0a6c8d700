//! Type checker: resolves field paths against the schema, checks operator
//! and function typing, and produces a typed tree for the compiler.
//!
//! Errors are collected, not fatal: a failed subexpression yields `None`,
//! which its parents accept silently (no follow-on diagnostics), while
//! independent siblings are still checked.

use super::Diagnostic;
use super::lexer::Pos;
use super::parser::{BinOp, Expr, ExprKind, UnOp};
use super::schema::{FieldDef, Schema, Type};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StrTest {
    StartsWith,
    EndsWith,
    Contains,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Lit {
    Bool(bool),
    Int(i64),
    Double(f64),
    Str(String),
}

impl Lit {
    fn ty(&self) -> Type {
        match self {
            Lit::Bool(_) => Type::Bool,
            Lit::Int(_) => Type::Int,
            Lit::Double(_) => Type::Double,
            Lit::Str(_) => Type::String,
        }
    }
}

/// Typed expression. Operands of binary nodes have the same type (implicit
/// int→double promotions are explicit `ToDouble` nodes).
pub(super) enum TExpr<T: 'static> {
    Lit(Lit),
    Field(&'static FieldDef<T>),
    ToDouble(Box<TExpr<T>>),
    Not(Box<TExpr<T>>),
    Neg(Box<TExpr<T>>),
    Arith(ArithOp, Box<TExpr<T>>, Box<TExpr<T>>),
    Cmp(CmpOp, Box<TExpr<T>>, Box<TExpr<T>>),
    And(Vec<TExpr<T>>),
    Or(Vec<TExpr<T>>),
    Cond(Box<TExpr<T>>, Box<TExpr<T>>, Box<TExpr<T>>),
    In(Box<TExpr<T>>, Vec<Lit>),
    Size(Box<TExpr<T>>),
    StrTest(StrTest, Box<TExpr<T>>, Box<TExpr<T>>),
}

type Checked<T> = Option<(TExpr<T>, Type)>;

const METHODS: &[&str] = &["size", "startsWith", "endsWith", "contains"];
const FUNCTIONS: &[&str] = &["size"];

pub(super) struct Checker<'d, T: 'static> {
    fields: &'static [FieldDef<T>],
    diags: &'d mut Vec<Diagnostic>,
    pub used: Vec<&'static str>,
}

/// Levenshtein distance over chars, case-insensitive.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().flat_map(char::to_lowercase).collect();
    let b: Vec<char> = b.chars().flat_map(char::to_lowercase).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0usize; b.len().saturating_add(1)];
    for (i, ca) in a.iter().enumerate() {
        if let Some(c0) = cur.first_mut() {
            *c0 = i.saturating_add(1);
        }
        for (j, cb) in b.iter().enumerate() {
            let sub = prev
                .get(j)
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(usize::from(ca != cb));
            let del = prev
                .get(j.saturating_add(1))
                .copied()
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            let ins = cur.get(j).copied().unwrap_or(usize::MAX).saturating_add(1);
            if let Some(slot) = cur.get_mut(j.saturating_add(1)) {
                *slot = sub.min(del).min(ins);
            }
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev.last().copied().unwrap_or(0)
}

/// The closest candidate to `name`, if it is close enough to be a likely typo.
pub(super) fn suggest<'c>(
    name: &str,
    candidates: impl IntoIterator<Item = &'c str>,
) -> Option<&'c str> {
    let len = name.chars().count();
    let threshold = (len / 3).clamp(1, 4);
    let mut best: Option<(usize, &'c str)> = None;
    for cand in candidates {
        let clen = cand.chars().count();
        let last = cand.rsplit('.').next().unwrap_or(cand);
        let score = if cand.eq_ignore_ascii_case(name) {
            Some(0)
        } else if clen.abs_diff(len) <= threshold && distance(name, cand) <= threshold {
            Some(distance(name, cand).saturating_add(1))
        } else if last != cand
            && last.chars().count().abs_diff(len) <= threshold
            && distance(name, last) <= threshold
        {
            // The user omitted the group prefix (`country` for `geo.country`).
            Some(distance(name, last).saturating_add(2))
        } else {
            None
        };
        if let Some(s) = score
            && best.is_none_or(|(b, _)| s < b)
        {
            best = Some((s, cand));
        }
    }
    best.map(|(_, c)| c)
}

fn did_you_mean(s: Option<&str>) -> String {
    match s {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

fn path_of(e: &Expr) -> Option<String> {
    match &e.kind {
        ExprKind::Ident(n) => Some(n.clone()),
        ExprKind::Select(base, f) => {
            let mut p = path_of(base)?;
            p.push('.');
            p.push_str(f);
            Some(p)
        }
        _ => None,
    }
}

fn literal(e: &Expr) -> Option<Lit> {
    match &e.kind {
        ExprKind::Bool(b) => Some(Lit::Bool(*b)),
        ExprKind::Int(i) => Some(Lit::Int(*i)),
        ExprKind::Double(d) => Some(Lit::Double(*d)),
        ExprKind::Str(s) => Some(Lit::Str(s.clone())),
        _ => None,
    }
}

fn is_numeric(t: Type) -> bool {
    matches!(t, Type::Int | Type::Double)
}

/// Brings two operands to a common type (int→double promotion).
fn unify<T>(l: (TExpr<T>, Type), r: (TExpr<T>, Type)) -> Result<(TExpr<T>, TExpr<T>, Type), ()> {
    match (l.1, r.1) {
        (a, b) if a == b => Ok((l.0, r.0, a)),
        (Type::Int, Type::Double) => Ok((TExpr::ToDouble(Box::new(l.0)), r.0, Type::Double)),
        (Type::Double, Type::Int) => Ok((l.0, TExpr::ToDouble(Box::new(r.0)), Type::Double)),
        _ => Err(()),
    }
}

impl<'d, T: Schema> Checker<'d, T> {
    pub fn new(diags: &'d mut Vec<Diagnostic>) -> Self {
        Checker {
            fields: T::fields(),
            diags,
            used: Vec::new(),
        }
    }

    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.diags.push(Diagnostic::at(pos, message));
    }

    fn mismatch(&mut self, pos: Pos, op: &str, l: Type, r: Type) {
        self.error(
            pos,
            format!("type mismatch: operator `{op}` cannot be applied to {l} and {r}"),
        );
    }

    /// Checks the whole rule, which must be of type bool.
    pub fn check_rule(&mut self, e: &Expr) -> Option<TExpr<T>> {
        let (t, ty) = self.check(e)?;
        if ty != Type::Bool {
            self.error(
                e.start,
                format!("rule must be a bool expression, found {ty}"),
            );
            return None;
        }
        Some(t)
    }

    fn check(&mut self, e: &Expr) -> Checked<T> {
        match &e.kind {
            ExprKind::Bool(b) => Some((TExpr::Lit(Lit::Bool(*b)), Type::Bool)),
            ExprKind::Int(i) => Some((TExpr::Lit(Lit::Int(*i)), Type::Int)),
            ExprKind::Double(d) => Some((TExpr::Lit(Lit::Double(*d)), Type::Double)),
            ExprKind::Str(s) => Some((TExpr::Lit(Lit::Str(s.clone())), Type::String)),
            ExprKind::Null => {
                self.error(
                    e.pos,
                    "`null` is not supported (schema fields are never null)",
                );
                None
            }
            ExprKind::Error => None,
            ExprKind::Ident(_) | ExprKind::Select(..) => self.check_path(e),
            ExprKind::Call { target, name, args } => {
                self.check_call(e, target.as_deref(), name, args)
            }
            ExprKind::Unary(op, x) => {
                let (t, ty) = self.check(x)?;
                match (op, ty) {
                    (UnOp::Not, Type::Bool) => Some((TExpr::Not(Box::new(t)), ty)),
                    (UnOp::Neg, Type::Int | Type::Double) => Some((TExpr::Neg(Box::new(t)), ty)),
                    (UnOp::Not, _) => {
                        self.error(e.pos, format!("operator `!` cannot be applied to {ty}"));
                        None
                    }
                    (UnOp::Neg, _) => {
                        self.error(e.pos, format!("operator `-` cannot be applied to {ty}"));
                        None
                    }
                }
            }
            ExprKind::Binary(BinOp::In, l, r) => self.check_in(l, r),
            ExprKind::Binary(op, l, r) => {
                let l = self.check(l);
                let r = self.check(r);
                self.check_binary(e.pos, *op, l?, r?)
            }
            ExprKind::And(items) | ExprKind::Or(items) => {
                let is_and = matches!(e.kind, ExprKind::And(_));
                let sym = if is_and { "&&" } else { "||" };
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for it in items {
                    match self.check(it) {
                        Some((t, Type::Bool)) => out.push(t),
                        Some((_, ty)) => {
                            ok = false;
                            self.error(
                                it.start,
                                format!("operands of `{sym}` must be bool, found {ty}"),
                            );
                        }
                        None => ok = false,
                    }
                }
                if !ok {
                    return None;
                }
                let t = if is_and {
                    TExpr::And(out)
                } else {
                    TExpr::Or(out)
                };
                Some((t, Type::Bool))
            }
            ExprKind::Cond(c, a, b) => {
                let c_checked = self.check(c);
                let a = self.check(a);
                let b = self.check(b);
                let c_t = match c_checked {
                    Some((t, Type::Bool)) => Some(t),
                    Some((_, ty)) => {
                        self.error(
                            c.start,
                            format!("condition of `? :` must be bool, found {ty}"),
                        );
                        None
                    }
                    None => None,
                };
                let (c_t, a, b) = (c_t?, a?, b?);
                let (at, bt) = (a.1, b.1);
                match unify(a, b) {
                    Ok((a, b, ty)) => {
                        Some((TExpr::Cond(Box::new(c_t), Box::new(a), Box::new(b)), ty))
                    }
                    Err(()) => {
                        self.error(
                            e.pos,
                            format!("branches of `? :` have different types: {at} and {bt}"),
                        );
                        None
                    }
                }
            }
            ExprKind::List(_) => {
                self.error(
                    e.pos,
                    "list literals are only supported on the right-hand side of `in`",
                );
                None
            }
        }
    }

    fn check_binary(
        &mut self,
        pos: Pos,
        op: BinOp,
        l: (TExpr<T>, Type),
        r: (TExpr<T>, Type),
    ) -> Checked<T> {
        let (lt, rt) = (l.1, r.1);
        let sym = op.symbol();
        let Ok((l, r, ty)) = unify(l, r) else {
            self.mismatch(pos, sym, lt, rt);
            return None;
        };
        let cmp = |c: CmpOp, l, r| Some((TExpr::Cmp(c, Box::new(l), Box::new(r)), Type::Bool));
        let arith = |a: ArithOp, l, r| Some((TExpr::Arith(a, Box::new(l), Box::new(r)), ty));
        match op {
            BinOp::Eq => cmp(CmpOp::Eq, l, r),
            BinOp::Ne => cmp(CmpOp::Ne, l, r),
            BinOp::Lt => cmp(CmpOp::Lt, l, r),
            BinOp::Le => cmp(CmpOp::Le, l, r),
            BinOp::Gt => cmp(CmpOp::Gt, l, r),
            BinOp::Ge => cmp(CmpOp::Ge, l, r),
            BinOp::Add if is_numeric(ty) || ty == Type::String => arith(ArithOp::Add, l, r),
            BinOp::Sub if is_numeric(ty) => arith(ArithOp::Sub, l, r),
            BinOp::Mul if is_numeric(ty) => arith(ArithOp::Mul, l, r),
            BinOp::Div if is_numeric(ty) => arith(ArithOp::Div, l, r),
            BinOp::Rem if ty == Type::Int => arith(ArithOp::Rem, l, r),
            _ => {
                self.mismatch(pos, sym, lt, rt);
                None
            }
        }
    }

    fn check_in(&mut self, l: &Expr, r: &Expr) -> Checked<T> {
        let lhs = self.check(l);
        let ExprKind::List(items) = &r.kind else {
            let _ = self.check(r);
            self.error(
                r.start,
                "right-hand side of `in` must be a list literal, e.g. `['web', 'api']`",
            );
            return None;
        };
        let mut lits = Vec::with_capacity(items.len());
        let mut ok = true;
        for it in items {
            match literal(it) {
                Some(l) => lits.push((l, it.pos)),
                None => {
                    ok = false;
                    if !matches!(it.kind, ExprKind::Error) {
                        self.error(it.start, "elements of an `in` list must be literals");
                    }
                }
            }
        }
        let (lhs, mut lty) = lhs?;
        // Numeric promotion: any double on either side makes it a double list.
        let any_double = lits.iter().any(|(l, _)| matches!(l, Lit::Double(_)));
        let mut lhs = lhs;
        if lty == Type::Int && any_double {
            lhs = TExpr::ToDouble(Box::new(lhs));
            lty = Type::Double;
        }
        let mut out = Vec::with_capacity(lits.len());
        for (lit, pos) in lits {
            let lit = match (lty, lit) {
                (Type::Double, Lit::Int(i)) => Lit::Double(i as f64),
                (_, lit) => lit,
            };
            if lit.ty() != lty {
                ok = false;
                self.error(
                    pos,
                    format!(
                        "type mismatch: list element is {}, but the left-hand side of `in` is {lty}",
                        lit.ty()
                    ),
                );
            } else {
                out.push(lit);
            }
        }
        if !ok {
            return None;
        }
        Some((TExpr::In(Box::new(lhs), out), Type::Bool))
    }

    fn check_path(&mut self, e: &Expr) -> Checked<T> {
        let Some(path) = path_of(e) else {
            // Selection on a computed value, e.g. `size(s).x`.
            if let ExprKind::Select(base, name) = &e.kind {
                let (_, ty) = self.check(base)?;
                self.error(
                    e.pos,
                    format!("cannot select field `{name}` on a value of type {ty}"),
                );
            }
            return None;
        };
        let fields = self.fields;
        if let Some(f) = fields.iter().find(|f| f.path == path) {
            self.used.push(f.path);
            return Some((TExpr::Field(f), f.ty));
        }
        // A field followed by further selection: `geo.country.code`.
        let mut prefix_end = path.len();
        while let Some(dot) = path.get(..prefix_end).and_then(|p| p.rfind('.')) {
            prefix_end = dot;
            let prefix = path.get(..dot).unwrap_or("");
            if let Some(f) = fields.iter().find(|f| f.path == prefix) {
                let member = path
                    .get(dot.saturating_add(1)..)
                    .and_then(|rest| rest.split('.').next())
                    .unwrap_or("");
                let extra = if member == "size" {
                    " (did you mean the method `size()`?)"
                } else {
                    ""
                };
                self.error(
                    e.pos,
                    format!(
                        "field `{prefix}` is of type {} and has no member `{member}`{extra}",
                        f.ty
                    ),
                );
                return None;
            }
        }
        // A group prefix used as a value: `velocity`.
        let group = format!("{path}.");
        let under: Vec<&str> = fields
            .iter()
            .filter(|f| f.path.starts_with(&group))
            .map(|f| f.path)
            .collect();
        if !under.is_empty() {
            let mut list: Vec<String> = under.iter().take(5).map(|p| format!("`{p}`")).collect();
            if under.len() > 5 {
                list.push("...".to_string());
            }
            self.error(
                e.start,
                format!(
                    "`{path}` is a group of fields, not a value (fields: {})",
                    list.join(", ")
                ),
            );
            return None;
        }
        let hint = did_you_mean(suggest(&path, fields.iter().map(|f| f.path)));
        self.error(e.start, format!("unknown field `{path}`{hint}"));
        None
    }

    fn check_call(
        &mut self,
        e: &Expr,
        target: Option<&Expr>,
        name: &str,
        args: &[Expr],
    ) -> Checked<T> {
        let recv = target.map(|t| self.check(t));
        let mut checked_args = Vec::with_capacity(args.len());
        for a in args {
            checked_args.push(self.check(a));
        }
        let arity = |this: &mut Self, n: usize| -> bool {
            if args.len() == n {
                return true;
            }
            let what = if n == 1 { "argument" } else { "arguments" };
            let call = if target.is_some() {
                format!("method `{name}`")
            } else {
                format!("function `{name}`")
            };
            this.error(
                e.pos,
                format!("{call} expects {n} {what}, found {}", args.len()),
            );
            false
        };
        let want_string = |this: &mut Self, what: &str, pos: Pos, ty: Type| -> bool {
            if ty == Type::String {
                return true;
            }
            this.error(pos, format!("{what} must be a string, found {ty}"));
            false
        };
        match (recv, name) {
            (None, "size") => {
                if !arity(self, 1) {
                    return None;
                }
                let (a, ty) = checked_args.into_iter().next()??;
                let pos = args.first().map_or(e.pos, |a| a.start);
                if !want_string(self, "argument of `size`", pos, ty) {
                    return None;
                }
                Some((TExpr::Size(Box::new(a)), Type::Int))
            }
            (None, _) => {
                let hint = if METHODS.contains(&name) {
                    format!("; it is a method: write `s.{name}(...)`")
                } else {
                    did_you_mean(suggest(name, FUNCTIONS.iter().copied()))
                };
                self.error(e.pos, format!("unknown function `{name}`{hint}"));
                None
            }
            (Some(recv), "size") => {
                let ok = arity(self, 0);
                let (r, ty) = recv?;
                let pos = target.map_or(e.pos, |t| t.start);
                if !want_string(self, "receiver of `size()`", pos, ty) || !ok {
                    return None;
                }
                Some((TExpr::Size(Box::new(r)), Type::Int))
            }
            (Some(recv), "startsWith" | "endsWith" | "contains") => {
                let op = match name {
                    "startsWith" => StrTest::StartsWith,
                    "endsWith" => StrTest::EndsWith,
                    _ => StrTest::Contains,
                };
                let ok = arity(self, 1);
                let rpos = target.map_or(e.pos, |t| t.start);
                let recv_ok = match &recv {
                    Some((_, ty)) => want_string(self, &format!("receiver of `{name}`"), rpos, *ty),
                    None => false,
                };
                if !ok {
                    return None;
                }
                let (a, aty) = checked_args.into_iter().next()??;
                let apos = args.first().map_or(e.pos, |a| a.start);
                let arg_ok = want_string(self, &format!("argument of `{name}`"), apos, aty);
                let (r, _) = recv?;
                if !recv_ok || !arg_ok {
                    return None;
                }
                Some((TExpr::StrTest(op, Box::new(r), Box::new(a)), Type::Bool))
            }
            (Some(recv), _) => {
                let on = match recv {
                    Some((_, ty)) => format!(" on {ty}"),
                    None => String::new(),
                };
                let hint = did_you_mean(suggest(name, METHODS.iter().copied()));
                self.error(e.pos, format!("unknown method `{name}`{on}{hint}"));
                None
            }
        }
    }
}
