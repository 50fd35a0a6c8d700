//! Compiles the typed tree into a tree of closures specialised by type.
//!
//! Each node is either a constant, a direct field read (kept separate so
//! that `field <op> constant` compiles to a single closure calling the
//! field's `get` fn pointer), or a boxed closure. Constant subexpressions
//! are folded; a constant subexpression that fails (e.g. `1 / 0`) is kept
//! as a closure returning the error, as CEL reports it at evaluation time.

use std::borrow::Cow;
use std::collections::HashSet;

use super::EvalError;
use super::check::{ArithOp, CmpOp, Lit, StrTest, TExpr};
use super::schema::{Schema, Type, Value};

pub(super) type Getter<T> = fn(&T) -> Value<'_>;
pub(super) type Fn1<T, V> = Box<dyn Fn(&T) -> Result<V, EvalError> + Send + Sync>;
type StrFn<T> = Box<dyn for<'a> Fn(&'a T) -> Result<Cow<'a, str>, EvalError> + Send + Sync>;

/// Above this many elements a string `in` list uses a hash set.
const SMALL_SET: usize = 8;

/// A scalar (bool, int or double) result type.
pub(super) trait Prim: Copy + Send + Sync + 'static {
    const TY: Type;
    fn from_value(v: Value<'_>) -> Option<Self>;
}

impl Prim for bool {
    const TY: Type = Type::Bool;
    #[inline(always)]
    fn from_value(v: Value<'_>) -> Option<Self> {
        match v {
            Value::Bool(b) => Some(b),
            _ => None,
        }
    }
}

impl Prim for i64 {
    const TY: Type = Type::Int;
    #[inline(always)]
    fn from_value(v: Value<'_>) -> Option<Self> {
        match v {
            Value::Int(i) => Some(i),
            _ => None,
        }
    }
}

impl Prim for f64 {
    const TY: Type = Type::Double;
    #[inline(always)]
    fn from_value(v: Value<'_>) -> Option<Self> {
        match v {
            Value::Double(d) => Some(d),
            _ => None,
        }
    }
}

#[inline(always)]
fn read<T, V: Prim>(get: Getter<T>, path: &'static str, x: &T) -> Result<V, EvalError> {
    V::from_value(get(x)).ok_or(EvalError::FieldType {
        path,
        expected: V::TY,
    })
}

#[inline(always)]
fn read_str<'a, T>(get: Getter<T>, path: &'static str, x: &'a T) -> Result<&'a str, EvalError> {
    match get(x) {
        Value::Str(s) => Ok(s),
        _ => Err(EvalError::FieldType {
            path,
            expected: Type::String,
        }),
    }
}

pub(super) enum PNode<T, V> {
    Const(V),
    Field(Getter<T>, &'static str),
    Dyn(Fn1<T, V>),
}

impl<T: 'static, V: Prim> PNode<T, V> {
    pub fn into_fn(self) -> Fn1<T, V> {
        match self {
            PNode::Const(v) => Box::new(move |_| Ok(v)),
            PNode::Field(g, p) => Box::new(move |x| read(g, p, x)),
            PNode::Dyn(f) => f,
        }
    }
}

/// A node that evaluates to an error at run time (from constant folding).
fn fail<T: 'static, V: Prim>(e: EvalError) -> PNode<T, V> {
    PNode::Dyn(Box::new(move |_| Err(e)))
}

fn map<T: 'static, A: Prim, R: Prim>(
    n: PNode<T, A>,
    op: impl Fn(A) -> Result<R, EvalError> + Send + Sync + 'static,
) -> PNode<T, R> {
    match n {
        PNode::Const(a) => match op(a) {
            Ok(v) => PNode::Const(v),
            Err(e) => fail(e),
        },
        PNode::Field(g, p) => PNode::Dyn(Box::new(move |x| op(read(g, p, x)?))),
        PNode::Dyn(f) => PNode::Dyn(Box::new(move |x| op(f(x)?))),
    }
}

fn bin<T: 'static, A: Prim, R: Prim>(
    l: PNode<T, A>,
    r: PNode<T, A>,
    op: impl Fn(A, A) -> Result<R, EvalError> + Send + Sync + 'static,
) -> PNode<T, R> {
    use PNode::{Const, Dyn, Field};
    match (l, r) {
        (Const(a), Const(b)) => match op(a, b) {
            Ok(v) => Const(v),
            Err(e) => fail(e),
        },
        (Field(g, p), Const(b)) => Dyn(Box::new(move |x| op(read(g, p, x)?, b))),
        (Const(a), Field(g, p)) => Dyn(Box::new(move |x| op(a, read(g, p, x)?))),
        (Field(g1, p1), Field(g2, p2)) => {
            Dyn(Box::new(move |x| op(read(g1, p1, x)?, read(g2, p2, x)?)))
        }
        (Dyn(f), Const(b)) => Dyn(Box::new(move |x| op(f(x)?, b))),
        (Const(a), Dyn(f)) => Dyn(Box::new(move |x| op(a, f(x)?))),
        (l, r) => {
            let (lf, rf) = (l.into_fn(), r.into_fn());
            Dyn(Box::new(move |x| op(lf(x)?, rf(x)?)))
        }
    }
}

fn cmp<T: 'static, A: Prim + PartialOrd>(
    op: CmpOp,
    l: PNode<T, A>,
    r: PNode<T, A>,
) -> PNode<T, bool> {
    match op {
        CmpOp::Eq => bin(l, r, |a, b| Ok(a == b)),
        CmpOp::Ne => bin(l, r, |a, b| Ok(a != b)),
        CmpOp::Lt => bin(l, r, |a, b| Ok(a < b)),
        CmpOp::Le => bin(l, r, |a, b| Ok(a <= b)),
        CmpOp::Gt => bin(l, r, |a, b| Ok(a > b)),
        CmpOp::Ge => bin(l, r, |a, b| Ok(a >= b)),
    }
}

fn cond<T: 'static, V: Prim>(c: PNode<T, bool>, a: PNode<T, V>, b: PNode<T, V>) -> PNode<T, V> {
    match c {
        PNode::Const(true) => a,
        PNode::Const(false) => b,
        c => {
            let (c, a, b) = (c.into_fn(), a.into_fn(), b.into_fn());
            PNode::Dyn(Box::new(move |x| if c(x)? { a(x) } else { b(x) }))
        }
    }
}

fn membership<T: 'static, V: Prim + PartialEq>(n: PNode<T, V>, list: Vec<V>) -> PNode<T, bool> {
    match list.as_slice() {
        [] => map(n, |_| Ok(false)),
        [a] => {
            let a = *a;
            map(n, move |v| Ok(v == a))
        }
        [a, b] => {
            let (a, b) = (*a, *b);
            map(n, move |v| Ok(v == a || v == b))
        }
        _ => {
            let list = list.into_boxed_slice();
            map(n, move |v| Ok(list.contains(&v)))
        }
    }
}

/// Short-circuiting `&&` / `||` with CEL's commutative error semantics:
/// a definite result (`false` for `&&`, `true` for `||`) from any operand
/// wins over an error from another operand.
fn logic<T: 'static>(items: Vec<PNode<T, bool>>, is_and: bool) -> PNode<T, bool> {
    // `stop` is the value that decides the result.
    let stop = !is_and;
    let mut dynamic = Vec::with_capacity(items.len());
    for it in items {
        match it {
            PNode::Const(v) if v == stop => return PNode::Const(stop),
            PNode::Const(_) => {}
            other => dynamic.push(other.into_fn()),
        }
    }
    let mut it = dynamic.into_iter();
    match (it.next(), it.next(), it.len()) {
        (None, _, _) => PNode::Const(!stop),
        (Some(f), None, _) => PNode::Dyn(f),
        (Some(a), Some(b), 0) => PNode::Dyn(Box::new(move |x| match a(x) {
            Ok(v) if v == stop => Ok(stop),
            Ok(_) => b(x),
            Err(e) => match b(x) {
                Ok(v) if v == stop => Ok(stop),
                _ => Err(e),
            },
        })),
        (Some(a), Some(b), _) => {
            let fs: Box<[Fn1<T, bool>]> = [a, b].into_iter().chain(it).collect();
            PNode::Dyn(Box::new(move |x| {
                let mut err = None;
                for f in fs.iter() {
                    match f(x) {
                        Ok(v) if v == stop => return Ok(stop),
                        Ok(_) => {}
                        Err(e) => {
                            if err.is_none() {
                                err = Some(e);
                            }
                        }
                    }
                }
                match err {
                    Some(e) => Err(e),
                    None => Ok(!stop),
                }
            }))
        }
    }
}

pub(super) enum SNode<T> {
    Const(String),
    Field(Getter<T>, &'static str),
    Dyn(StrFn<T>),
}

impl<T: 'static> SNode<T> {
    fn into_fn(self) -> StrFn<T> {
        match self {
            SNode::Const(s) => Box::new(move |_| Ok(Cow::Owned(s.clone()))),
            SNode::Field(g, p) => Box::new(move |x| read_str(g, p, x).map(Cow::Borrowed)),
            SNode::Dyn(f) => f,
        }
    }
}

/// Applies a function of one string.
fn smap<T: 'static, R: Prim>(
    n: SNode<T>,
    op: impl Fn(&str) -> R + Send + Sync + 'static,
) -> PNode<T, R> {
    match n {
        SNode::Const(s) => PNode::Const(op(&s)),
        SNode::Field(g, p) => PNode::Dyn(Box::new(move |x| Ok(op(read_str(g, p, x)?)))),
        SNode::Dyn(f) => PNode::Dyn(Box::new(move |x| Ok(op(&f(x)?)))),
    }
}

/// Applies a function of two strings.
fn sbin<T: 'static, R: Prim>(
    l: SNode<T>,
    r: SNode<T>,
    op: impl Fn(&str, &str) -> R + Send + Sync + 'static,
) -> PNode<T, R> {
    match (l, r) {
        (SNode::Const(a), SNode::Const(b)) => PNode::Const(op(&a, &b)),
        (l, SNode::Const(b)) => smap(l, move |a| op(a, &b)),
        (SNode::Const(a), r) => smap(r, move |b| op(&a, b)),
        (SNode::Field(g1, p1), SNode::Field(g2, p2)) => PNode::Dyn(Box::new(move |x| {
            Ok(op(read_str(g1, p1, x)?, read_str(g2, p2, x)?))
        })),
        (l, r) => {
            let (lf, rf) = (l.into_fn(), r.into_fn());
            PNode::Dyn(Box::new(move |x| Ok(op(&lf(x)?, &rf(x)?))))
        }
    }
}

fn scmp<T: 'static>(op: CmpOp, l: SNode<T>, r: SNode<T>) -> PNode<T, bool> {
    match op {
        CmpOp::Eq => sbin(l, r, |a, b| a == b),
        CmpOp::Ne => sbin(l, r, |a, b| a != b),
        CmpOp::Lt => sbin(l, r, |a, b| a < b),
        CmpOp::Le => sbin(l, r, |a, b| a <= b),
        CmpOp::Gt => sbin(l, r, |a, b| a > b),
        CmpOp::Ge => sbin(l, r, |a, b| a >= b),
    }
}

/// A compiled subexpression.
pub(super) enum Node<T> {
    Bool(PNode<T, bool>),
    Int(PNode<T, i64>),
    Double(PNode<T, f64>),
    Str(SNode<T>),
}

/// The typed tree did not have the shape the checker guarantees. Never
/// expected to happen; reported as a diagnostic rather than a panic.
#[derive(Debug)]
pub(super) struct Internal(pub &'static str);

type CResult<T> = Result<Node<T>, Internal>;

impl<T: 'static> Node<T> {
    fn bool(self) -> Result<PNode<T, bool>, Internal> {
        match self {
            Node::Bool(b) => Ok(b),
            _ => Err(Internal("expected bool")),
        }
    }
    fn int(self) -> Result<PNode<T, i64>, Internal> {
        match self {
            Node::Int(b) => Ok(b),
            _ => Err(Internal("expected int")),
        }
    }
    fn string(self) -> Result<SNode<T>, Internal> {
        match self {
            Node::Str(b) => Ok(b),
            _ => Err(Internal("expected string")),
        }
    }
}

fn int_arith<T: 'static>(op: ArithOp, l: PNode<T, i64>, r: PNode<T, i64>) -> PNode<T, i64> {
    match op {
        ArithOp::Add => bin(l, r, |a: i64, b| {
            a.checked_add(b).ok_or(EvalError::Overflow)
        }),
        ArithOp::Sub => bin(l, r, |a: i64, b| {
            a.checked_sub(b).ok_or(EvalError::Overflow)
        }),
        ArithOp::Mul => bin(l, r, |a: i64, b| {
            a.checked_mul(b).ok_or(EvalError::Overflow)
        }),
        ArithOp::Div => bin(l, r, |a: i64, b| {
            if b == 0 {
                return Err(EvalError::DivisionByZero);
            }
            a.checked_div(b).ok_or(EvalError::Overflow)
        }),
        ArithOp::Rem => bin(l, r, |a: i64, b| {
            if b == 0 {
                return Err(EvalError::ModuloByZero);
            }
            a.checked_rem(b).ok_or(EvalError::Overflow)
        }),
    }
}

fn double_arith<T: 'static>(
    op: ArithOp,
    l: PNode<T, f64>,
    r: PNode<T, f64>,
) -> Result<PNode<T, f64>, Internal> {
    Ok(match op {
        ArithOp::Add => bin(l, r, |a: f64, b| Ok(a + b)),
        ArithOp::Sub => bin(l, r, |a: f64, b| Ok(a - b)),
        ArithOp::Mul => bin(l, r, |a: f64, b| Ok(a * b)),
        ArithOp::Div => bin(l, r, |a: f64, b| Ok(a / b)),
        ArithOp::Rem => return Err(Internal("% on double")),
    })
}

fn concat<T: 'static>(l: SNode<T>, r: SNode<T>) -> SNode<T> {
    match (l, r) {
        (SNode::Const(mut a), SNode::Const(b)) => {
            a.push_str(&b);
            SNode::Const(a)
        }
        (l, r) => {
            let (lf, rf) = (l.into_fn(), r.into_fn());
            SNode::Dyn(Box::new(move |x| {
                let a = lf(x)?;
                let b = rf(x)?;
                let mut s = String::with_capacity(a.len().saturating_add(b.len()));
                s.push_str(&a);
                s.push_str(&b);
                Ok(Cow::Owned(s))
            }))
        }
    }
}

fn str_in<T: 'static>(n: SNode<T>, list: Vec<String>) -> PNode<T, bool> {
    match list.len() {
        0 => smap(n, |_| false),
        1..=SMALL_SET => {
            let list = list.into_boxed_slice();
            smap(n, move |s| list.iter().any(|e| e == s))
        }
        _ => {
            let set: HashSet<String> = list.into_iter().collect();
            smap(n, move |s| set.contains(s))
        }
    }
}

pub(super) fn compile_node<T: Schema>(e: TExpr<T>) -> CResult<T> {
    Ok(match e {
        TExpr::Lit(Lit::Bool(b)) => Node::Bool(PNode::Const(b)),
        TExpr::Lit(Lit::Int(i)) => Node::Int(PNode::Const(i)),
        TExpr::Lit(Lit::Double(d)) => Node::Double(PNode::Const(d)),
        TExpr::Lit(Lit::Str(s)) => Node::Str(SNode::Const(s)),
        TExpr::Field(f) => match f.ty {
            Type::Bool => Node::Bool(PNode::Field(f.get, f.path)),
            Type::Int => Node::Int(PNode::Field(f.get, f.path)),
            Type::Double => Node::Double(PNode::Field(f.get, f.path)),
            Type::String => Node::Str(SNode::Field(f.get, f.path)),
        },
        TExpr::ToDouble(x) => Node::Double(map(compile_node(*x)?.int()?, |i| Ok(i as f64))),
        TExpr::Not(x) => Node::Bool(map(compile_node(*x)?.bool()?, |b: bool| Ok(!b))),
        TExpr::Neg(x) => match compile_node(*x)? {
            Node::Int(n) => Node::Int(map(n, |i: i64| i.checked_neg().ok_or(EvalError::Overflow))),
            Node::Double(n) => Node::Double(map(n, |d: f64| Ok(-d))),
            _ => return Err(Internal("negation of non-number")),
        },
        TExpr::Arith(op, l, r) => match (compile_node(*l)?, compile_node(*r)?) {
            (Node::Int(l), Node::Int(r)) => Node::Int(int_arith(op, l, r)),
            (Node::Double(l), Node::Double(r)) => Node::Double(double_arith(op, l, r)?),
            (Node::Str(l), Node::Str(r)) if op == ArithOp::Add => Node::Str(concat(l, r)),
            _ => return Err(Internal("arithmetic operand types")),
        },
        TExpr::Cmp(op, l, r) => Node::Bool(match (compile_node(*l)?, compile_node(*r)?) {
            (Node::Bool(l), Node::Bool(r)) => cmp(op, l, r),
            (Node::Int(l), Node::Int(r)) => cmp(op, l, r),
            (Node::Double(l), Node::Double(r)) => cmp(op, l, r),
            (Node::Str(l), Node::Str(r)) => scmp(op, l, r),
            _ => return Err(Internal("comparison operand types")),
        }),
        TExpr::And(items) | TExpr::Or(items) if items.is_empty() => {
            return Err(Internal("empty logic"));
        }
        TExpr::And(items) => Node::Bool(logic(compile_all(items)?, true)),
        TExpr::Or(items) => Node::Bool(logic(compile_all(items)?, false)),
        TExpr::Cond(c, a, b) => {
            let c = compile_node(*c)?.bool()?;
            match (compile_node(*a)?, compile_node(*b)?) {
                (Node::Bool(a), Node::Bool(b)) => Node::Bool(cond(c, a, b)),
                (Node::Int(a), Node::Int(b)) => Node::Int(cond(c, a, b)),
                (Node::Double(a), Node::Double(b)) => Node::Double(cond(c, a, b)),
                (Node::Str(a), Node::Str(b)) => Node::Str(match c {
                    PNode::Const(true) => a,
                    PNode::Const(false) => b,
                    c => {
                        let (c, a, b) = (c.into_fn(), a.into_fn(), b.into_fn());
                        SNode::Dyn(Box::new(move |x| if c(x)? { a(x) } else { b(x) }))
                    }
                }),
                _ => return Err(Internal("conditional branch types")),
            }
        }
        TExpr::In(lhs, list) => Node::Bool(match compile_node(*lhs)? {
            Node::Bool(n) => membership(
                n,
                lits(list, |l| match l {
                    Lit::Bool(b) => Some(b),
                    _ => None,
                })?,
            ),
            Node::Int(n) => membership(
                n,
                lits(list, |l| match l {
                    Lit::Int(i) => Some(i),
                    _ => None,
                })?,
            ),
            Node::Double(n) => membership(
                n,
                lits(list, |l| match l {
                    Lit::Double(d) => Some(d),
                    _ => None,
                })?,
            ),
            Node::Str(n) => str_in(
                n,
                lits(list, |l| match l {
                    Lit::Str(s) => Some(s),
                    _ => None,
                })?,
            ),
        }),
        TExpr::Size(x) => Node::Int(smap(compile_node(*x)?.string()?, |s| {
            i64::try_from(s.chars().count()).unwrap_or(i64::MAX)
        })),
        TExpr::StrTest(op, s, arg) => {
            let (s, arg) = (compile_node(*s)?.string()?, compile_node(*arg)?.string()?);
            Node::Bool(match op {
                StrTest::StartsWith => sbin(s, arg, |a, b| a.starts_with(b)),
                StrTest::EndsWith => sbin(s, arg, |a, b| a.ends_with(b)),
                StrTest::Contains => sbin(s, arg, |a, b| a.contains(b)),
            })
        }
    })
}

fn compile_all<T: Schema>(items: Vec<TExpr<T>>) -> Result<Vec<PNode<T, bool>>, Internal> {
    items.into_iter().map(|e| compile_node(e)?.bool()).collect()
}

fn lits<V>(list: Vec<Lit>, f: impl Fn(Lit) -> Option<V>) -> Result<Vec<V>, Internal> {
    list.into_iter()
        .map(|l| f(l).ok_or(Internal("list element type")))
        .collect()
}
