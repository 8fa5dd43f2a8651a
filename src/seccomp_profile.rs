//! `--security-opt seccomp=FILE`: a seccomp profile in docker's JSON format
//! (moby's `profiles/seccomp`, as runc reads it), compiled to the same kind
//! of BPF program as the default filter ([`crate::seccomp`]), without
//! libseccomp.
//!
//! What is read, and how:
//! - `defaultAction` (with `defaultErrnoRet`) for every call no rule
//!   decides; `syscalls`: rules of `names` (or `name`), an `action` (with
//!   `errnoRet`), `args`, `includes` and `excludes`.
//! - Actions: `SCMP_ACT_ALLOW`, `SCMP_ACT_ERRNO` (`errnoRet`, else EPERM),
//!   `SCMP_ACT_KILL`/`SCMP_ACT_KILL_THREAD`, `SCMP_ACT_KILL_PROCESS`,
//!   `SCMP_ACT_TRAP`, `SCMP_ACT_LOG`, `SCMP_ACT_TRACE` (`errnoRet` as its
//!   data). `SCMP_ACT_NOTIFY` needs a listener tupper does not have: refused,
//!   as are `listenerPath` and `flags`.
//! - `args`: `index` 0-5, `value`, `valueTwo`, and `op`: `SCMP_CMP_EQ`,
//!   `NE`, `LT`, `LE`, `GT`, `GE` (unsigned, on all 64 bits) and
//!   `MASKED_EQ` (`arg & value == valueTwo`). A rule's conditions must all
//!   hold, except when two name the same argument: then each is a rule of
//!   its own (runc's rule, which docker's profiles are written for).
//! - `includes`/`excludes`: `caps` (the container's capabilities: all of
//!   `includes.caps` held, none of `excludes.caps`), `arches` (docker's
//!   names: a rule is for x86-64 when `amd64` is included or none is
//!   named, and not excluded), `minKernel` (`MAJOR.MINOR`, against the
//!   running kernel).
//! - A call is decided by the first rule that names it and whose conditions
//!   hold, in the file's order; then the default. A name x86-64 does not
//!   have (`socketcall`, `arm_fadvise64_64`, ...) is skipped, as runc does.
//! - `architectures` and `archMap` are not read: the filter is for the
//!   native x86-64 calls, and kills a call of another ABI (as the default
//!   filter does); a number above the table (x32's among them) gets
//!   `ENOSYS`.
//!
//! The program: the default filter's binary search over call numbers, whose
//! leaves are a `RET`, or for a call with conditions a long jump to its
//! block: each rule's comparisons (an argument's high word, then its low
//! word), its action, then the next rule, and the default last.

use linux_raw_sys::ptrace::{
    sock_filter, BPF_ALU, BPF_AND, BPF_JEQ, BPF_JGE, BPF_JGT, BPF_K, SECCOMP_RET_ALLOW,
    SECCOMP_RET_KILL_PROCESS, SECCOMP_RET_KILL_THREAD, SECCOMP_RET_LOG, SECCOMP_RET_TRACE,
    SECCOMP_RET_TRAP,
};
use serde::Deserialize;

use crate::seccomp::{self, errno, jump, load, ret, stmt, Action, Filter, ARGS, EPERM};

/// A profile as the file has it (fields tupper does not read are ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    syscalls: Vec<Rule>,
    #[serde(default)]
    listener_path: Option<String>,
    #[serde(default)]
    flags: Vec<String>,
}

/// One entry of `syscalls`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Select>,
    #[serde(default)]
    excludes: Option<Select>,
}

/// A condition on an argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

/// `includes` or `excludes`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Select {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// A comparison of one argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    MaskedEq,
}

/// A condition, checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cond {
    index: u32,
    op: Op,
    value: u64,
    value_two: u64,
}

/// A rule for one call: all of `conds` hold -> `action` (a `SECCOMP_RET_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct CallRule {
    conds: Vec<Cond>,
    action: u32,
}

/// Compiles profile `json` for a command with `capabilities`, on a kernel
/// of version `kernel` (`(major, minor)`). The error says what is wrong,
/// for "--security-opt seccomp=FILE: ...".
pub fn compile(json: &str, capabilities: u64, kernel: (u32, u32)) -> Result<Filter, String> {
    let profile: Profile = serde_json::from_str(json).map_err(|e| format!("not a profile: {e}"))?;
    if profile
        .listener_path
        .as_deref()
        .is_some_and(|p| !p.is_empty())
    {
        return Err("listenerPath: tupper has no seccomp notification listener".to_string());
    }
    if !profile.flags.is_empty() {
        return Err(format!("flags {:?} are not supported", profile.flags));
    }
    let default = action(&profile.default_action, profile.default_errno_ret)?;
    let mut by_call: Vec<Vec<CallRule>> = vec![Vec::new(); seccomp::LAST_KNOWN as usize + 1];
    for rule in &profile.syscalls {
        let what = rule
            .names
            .first()
            .or(rule.name.as_ref())
            .map_or("(no name)", |n| n.as_str());
        let bad = |why: String| format!("the rule of {what}: {why}");
        let action = action(&rule.action, rule.errno_ret).map_err(bad)?;
        let conds = rule
            .args
            .iter()
            .flatten()
            .map(condition)
            .collect::<Result<Vec<_>, _>>()
            .map_err(bad)?;
        if !applies(rule, capabilities, kernel).map_err(bad)? {
            continue;
        }
        // runc's rule: conditions on one argument named twice are rules of
        // their own (either may hold); else all must hold.
        let repeated = (0..6).any(|i| conds.iter().filter(|c| c.index == i).count() > 1);
        let rules: Vec<Vec<Cond>> = match repeated {
            true => conds.iter().map(|c| vec![*c]).collect(),
            false => vec![conds],
        };
        for name in rule.names.iter().chain(&rule.name) {
            let Some(number) = crate::syscall_names::number(name) else {
                continue;
            };
            for conds in &rules {
                by_call[number as usize].push(CallRule {
                    conds: conds.clone(),
                    action,
                });
            }
        }
    }
    // Each call's answer; the rule lists with conditions become blocks,
    // one per distinct list.
    let mut blocks: Vec<Vec<CallRule>> = Vec::new();
    let mut table = Vec::with_capacity(by_call.len());
    for (number, rules) in by_call.into_iter().enumerate() {
        let unused = seccomp::UNUSED.contains(&(number as u32));
        // The first rule without conditions decides; those after it never run.
        let cut = rules.iter().position(|r| r.conds.is_empty());
        let rules: Vec<CallRule> = match cut {
            Some(i) => rules[..=i].to_vec(),
            None => rules,
        };
        table.push(match rules.as_slice() {
            [] if unused => Action::Errno(seccomp::ENOSYS),
            [] => as_action(default),
            [only] if only.conds.is_empty() => as_action(only.action),
            _ => {
                let index = match blocks.iter().position(|b| *b == rules) {
                    Some(i) => i,
                    None => {
                        blocks.push(rules);
                        blocks.len() - 1
                    }
                };
                Action::Rules(index)
            }
        });
    }
    let code: Vec<Vec<sock_filter>> = blocks.iter().map(|b| block(b, default)).collect();
    let mut program = seccomp::header();
    program.extend(seccomp::search(&seccomp::runs(&table), &code)?);
    if program.len() > linux_raw_sys::ptrace::BPF_MAXINSNS as usize {
        return Err(format!(
            "its filter has {} instructions, over the kernel's {}",
            program.len(),
            linux_raw_sys::ptrace::BPF_MAXINSNS
        ));
    }
    Ok(Filter { program })
}

/// The running kernel's `(major, minor)` (`uname`), for `minKernel`.
pub fn running_kernel() -> (u32, u32) {
    let uname = rustix::system::uname();
    version(&uname.release().to_string_lossy()).unwrap_or((0, 0))
}

/// `MAJOR.MINOR[...]` as numbers.
fn version(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.split(|c: char| !c.is_ascii_digit());
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// A `SECCOMP_RET_*` value as the search's leaf.
fn as_action(value: u32) -> Action {
    match value {
        SECCOMP_RET_ALLOW => Action::Allow,
        v => Action::Ret(v),
    }
}

/// An action's `SECCOMP_RET_*` value.
fn action(name: &str, errno_ret: Option<u32>) -> Result<u32, String> {
    let data =
        |default: u32| errno_ret.unwrap_or(default) & linux_raw_sys::ptrace::SECCOMP_RET_DATA;
    Ok(match name {
        "SCMP_ACT_ALLOW" => SECCOMP_RET_ALLOW,
        "SCMP_ACT_ERRNO" => errno(data(EPERM)),
        "SCMP_ACT_KILL" | "SCMP_ACT_KILL_THREAD" => SECCOMP_RET_KILL_THREAD,
        "SCMP_ACT_KILL_PROCESS" => SECCOMP_RET_KILL_PROCESS,
        "SCMP_ACT_TRAP" => SECCOMP_RET_TRAP,
        "SCMP_ACT_LOG" => SECCOMP_RET_LOG,
        "SCMP_ACT_TRACE" => SECCOMP_RET_TRACE | data(0),
        "SCMP_ACT_NOTIFY" => {
            return Err(
                "SCMP_ACT_NOTIFY needs a notification listener, which tupper has not".into(),
            )
        }
        other => return Err(format!("unknown action {other:?}")),
    })
}

/// A condition, checked.
fn condition(arg: &Arg) -> Result<Cond, String> {
    if arg.index > 5 {
        return Err(format!("argument index {} (0-5)", arg.index));
    }
    let op = match arg.op.as_str() {
        "SCMP_CMP_EQ" => Op::Eq,
        "SCMP_CMP_NE" => Op::Ne,
        "SCMP_CMP_LT" => Op::Lt,
        "SCMP_CMP_LE" => Op::Le,
        "SCMP_CMP_GT" => Op::Gt,
        "SCMP_CMP_GE" => Op::Ge,
        "SCMP_CMP_MASKED_EQ" => Op::MaskedEq,
        other => return Err(format!("unknown comparison {other:?}")),
    };
    Ok(Cond {
        index: arg.index,
        op,
        value: arg.value,
        value_two: arg.value_two,
    })
}

/// Whether a rule is for this container: its capabilities, x86-64, this kernel.
fn applies(rule: &Rule, capabilities: u64, kernel: (u32, u32)) -> Result<bool, String> {
    let held = |name: &String| -> Result<bool, String> {
        let short = name.strip_prefix("CAP_").unwrap_or(name);
        let bit = crate::capabilities::bit(short)
            .ok_or_else(|| format!("unknown capability {name:?}"))?;
        Ok(capabilities & bit != 0)
    };
    let amd64 = |arches: &Option<Vec<String>>| {
        arches
            .iter()
            .flatten()
            .any(|a| a == "amd64" || a == "x86_64" || a == "SCMP_ARCH_X86_64")
    };
    if let Some(inc) = &rule.includes {
        for cap in inc.caps.iter().flatten() {
            if !held(cap)? {
                return Ok(false);
            }
        }
        if inc.arches.as_ref().is_some_and(|a| !a.is_empty()) && !amd64(&inc.arches) {
            return Ok(false);
        }
        if let Some(min) = inc.min_kernel.as_deref().filter(|m| !m.is_empty()) {
            let min =
                version(min).ok_or_else(|| format!("minKernel {min:?} is not MAJOR.MINOR"))?;
            if kernel < min {
                return Ok(false);
            }
        }
    }
    if let Some(exc) = &rule.excludes {
        for cap in exc.caps.iter().flatten() {
            if held(cap)? {
                return Ok(false);
            }
        }
        if amd64(&exc.arches) {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Where a comparison jumps: the next instruction of its condition (`Skip`
/// ahead), the next condition (`Pass`), or the next rule (`Fail`).
#[derive(Clone, Copy)]
enum To {
    Skip(u8),
    Pass,
    Fail,
}

/// A condition's instructions: loads, masks, and jumps to [`To`] targets.
fn cond_code(c: &Cond) -> Vec<(sock_filter, To, To)> {
    let (hi, lo) = ((c.value >> 32) as u32, c.value as u32);
    let at = ARGS + 8 * c.index;
    let plain = |i: sock_filter| (i, To::Skip(0), To::Skip(0));
    let j = |op: u32, k: u32, t: To, f: To| (jump(op, k, 0, 0), t, f);
    let load_hi = plain(load(at + 4));
    let load_lo = plain(load(at));
    match c.op {
        // hi == vhi && lo == vlo
        Op::Eq => vec![
            load_hi,
            j(BPF_JEQ, hi, To::Skip(0), To::Fail),
            load_lo,
            j(BPF_JEQ, lo, To::Pass, To::Fail),
        ],
        Op::Ne => vec![
            load_hi,
            j(BPF_JEQ, hi, To::Skip(0), To::Pass),
            load_lo,
            j(BPF_JEQ, lo, To::Fail, To::Pass),
        ],
        // (arg & value) == valueTwo, word by word.
        Op::MaskedEq => {
            let (dhi, dlo) = ((c.value_two >> 32) as u32, c.value_two as u32);
            vec![
                load_hi,
                plain(stmt(BPF_ALU | BPF_AND | BPF_K, hi)),
                j(BPF_JEQ, dhi, To::Skip(0), To::Fail),
                load_lo,
                plain(stmt(BPF_ALU | BPF_AND | BPF_K, lo)),
                j(BPF_JEQ, dlo, To::Pass, To::Fail),
            ]
        }
        // Unsigned 64-bit order: the high words decide unless equal.
        Op::Gt | Op::Ge => {
            let low = if c.op == Op::Gt { BPF_JGT } else { BPF_JGE };
            vec![
                load_hi,
                j(BPF_JGT, hi, To::Pass, To::Skip(0)),
                j(BPF_JEQ, hi, To::Skip(0), To::Fail),
                load_lo,
                j(low, lo, To::Pass, To::Fail),
            ]
        }
        Op::Lt | Op::Le => {
            // arg < v is !(arg >= v); arg <= v is !(arg > v).
            let low = if c.op == Op::Lt { BPF_JGE } else { BPF_JGT };
            vec![
                load_hi,
                j(BPF_JGT, hi, To::Fail, To::Skip(0)),
                j(BPF_JEQ, hi, To::Skip(0), To::Pass),
                load_lo,
                j(low, lo, To::Fail, To::Pass),
            ]
        }
    }
}

/// The block of a call's rules: each rule's conditions, then its action's
/// `RET`; a failed condition goes on to the next rule; the default last.
fn block(rules: &[CallRule], default: u32) -> Vec<sock_filter> {
    let mut code = Vec::new();
    for rule in rules {
        let start = code.len();
        let mut pending: Vec<(usize, To, To, usize)> = Vec::new();
        for cond in &rule.conds {
            let parts = cond_code(cond);
            let end = code.len() + parts.len();
            for (insn, t, f) in parts {
                pending.push((code.len(), t, f, end));
                code.push(insn);
            }
        }
        code.push(ret(rule.action));
        let next_rule = code.len();
        for (at, t, f, pass) in pending {
            let offset = |to: To| -> u8 {
                let target = match to {
                    To::Skip(n) => at + 1 + n as usize,
                    To::Pass => pass,
                    To::Fail => next_rule,
                };
                // A rule has at most 6 conditions of at most 6 instructions.
                (target - at - 1) as u8
            };
            if code[at].code as u32 & 0x07 == linux_raw_sys::ptrace::BPF_JMP {
                code[at].jt = offset(t);
                code[at].jf = offset(f);
            }
        }
        debug_assert!(code.len() - start < 256);
    }
    code.push(ret(default));
    code
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capabilities;
    use linux_raw_sys::general as nr;
    use linux_raw_sys::ptrace::AUDIT_ARCH_X86_64;

    const KERNEL: (u32, u32) = (6, 18);

    fn filter(json: &str) -> Filter {
        compile(json, capabilities::DEFAULT, KERNEL).unwrap()
    }

    fn call(f: &Filter, n: u32, args: [u64; 6]) -> u32 {
        seccomp::eval(f, AUDIT_ARCH_X86_64, n, args)
    }

    #[test]
    fn the_default_action_and_the_named_calls() {
        let f = filter(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
                "syscalls": [
                  {"names": ["read", "write", "exit_group", "socketcall"], "action": "SCMP_ACT_ALLOW"},
                  {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
                  {"name": "getpid", "action": "SCMP_ACT_KILL_PROCESS"}
                ]}"#,
        );
        let allow = SECCOMP_RET_ALLOW;
        assert_eq!(call(&f, nr::__NR_read, [0; 6]), allow);
        assert_eq!(call(&f, nr::__NR_exit_group, [0; 6]), allow);
        assert_eq!(call(&f, nr::__NR_mkdir, [0; 6]), errno(13));
        assert_eq!(call(&f, nr::__NR_getpid, [0; 6]), SECCOMP_RET_KILL_PROCESS);
        assert_eq!(call(&f, nr::__NR_open, [0; 6]), errno(1));
        // Numbers x86-64 leaves unused, and above the table: ENOSYS.
        assert_eq!(call(&f, 400, [0; 6]), errno(seccomp::ENOSYS));
        assert_eq!(call(&f, 0x4000_0000, [0; 6]), errno(seccomp::ENOSYS));
        // Another ABI is killed.
        assert_eq!(
            seccomp::eval(&f, 0x4000_0003, 1, [0; 6]),
            SECCOMP_RET_KILL_PROCESS
        );
    }

    #[test]
    fn conditions_compare_all_64_bits() {
        let rule = |op: &str, value: u64, two: u64| {
            filter(&format!(
                r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                    {{"names": ["personality"], "action": "SCMP_ACT_ERRNO", "errnoRet": 22,
                      "args": [{{"index": 1, "value": {value}, "valueTwo": {two}, "op": "{op}"}}]}}]}}"#
            ))
        };
        let values = [
            0u64,
            1,
            5,
            0xffff_ffff,
            1 << 32,
            (1 << 32) + 5,
            6 << 32,
            u64::MAX,
        ];
        let refused = errno(22);
        for (op, holds) in [
            (
                "SCMP_CMP_EQ",
                (|a: u64, v: u64| a == v) as fn(u64, u64) -> bool,
            ),
            ("SCMP_CMP_NE", |a, v| a != v),
            ("SCMP_CMP_LT", |a, v| a < v),
            ("SCMP_CMP_LE", |a, v| a <= v),
            ("SCMP_CMP_GT", |a, v| a > v),
            ("SCMP_CMP_GE", |a, v| a >= v),
        ] {
            for &v in &values {
                let f = rule(op, v, 0);
                for &a in &values {
                    let want = if holds(a, v) {
                        refused
                    } else {
                        SECCOMP_RET_ALLOW
                    };
                    let got = call(&f, nr::__NR_personality, [9, a, 0, 0, 0, 0]);
                    assert_eq!(got, want, "{op}: arg {a:#x} against {v:#x}");
                }
            }
        }
        let f = rule(
            "SCMP_CMP_MASKED_EQ",
            0x0000_00ff_0000_00f0,
            0x0000_0012_0000_0030,
        );
        assert_eq!(
            call(&f, nr::__NR_personality, [0, 0xab12_cd3f, 0, 0, 0, 0]),
            SECCOMP_RET_ALLOW
        );
        assert_eq!(
            call(
                &f,
                nr::__NR_personality,
                [0, 0x0000_0012_0000_0030, 0, 0, 0, 0]
            ),
            refused
        );
        assert_eq!(
            call(
                &f,
                nr::__NR_personality,
                [0, 0xff00_ff12_1111_ff3f, 0, 0, 0, 0]
            ),
            refused
        );
    }

    #[test]
    fn conditions_of_a_rule_all_hold_unless_one_argument_is_named_twice() {
        let f = filter(
            r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
                {"names": ["socket"], "action": "SCMP_ACT_ALLOW", "args": [
                  {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"},
                  {"index": 1, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["personality"], "action": "SCMP_ACT_ALLOW", "args": [
                  {"index": 0, "value": 0, "op": "SCMP_CMP_EQ"},
                  {"index": 0, "value": 8, "op": "SCMP_CMP_EQ"}]}]}"#,
        );
        let allow = SECCOMP_RET_ALLOW;
        assert_eq!(call(&f, nr::__NR_socket, [2, 1, 0, 0, 0, 0]), allow);
        assert_eq!(call(&f, nr::__NR_socket, [2, 2, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(call(&f, nr::__NR_socket, [10, 1, 0, 0, 0, 0]), errno(EPERM));
        assert_eq!(call(&f, nr::__NR_personality, [0; 6]), allow);
        assert_eq!(call(&f, nr::__NR_personality, [8, 0, 0, 0, 0, 0]), allow);
        assert_eq!(
            call(&f, nr::__NR_personality, [9, 0, 0, 0, 0, 0]),
            errno(EPERM)
        );
    }

    #[test]
    fn includes_and_excludes_pick_the_rules_of_this_container() {
        let json = r#"{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [
            {"names": ["mount"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["read"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["s390x"]}},
            {"names": ["write"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["close"], "action": "SCMP_ACT_ALLOW", "excludes": {"arches": ["amd64"]}},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["fsopen"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "99.1"}}]}"#;
        let admin = capabilities::DEFAULT | capabilities::bit("SYS_ADMIN").unwrap();
        let plain = compile(json, capabilities::DEFAULT, KERNEL).unwrap();
        let with_admin = compile(json, admin, KERNEL).unwrap();
        let allow = SECCOMP_RET_ALLOW;
        assert_eq!(call(&plain, nr::__NR_mount, [0; 6]), errno(EPERM));
        assert_eq!(call(&with_admin, nr::__NR_mount, [0; 6]), allow);
        assert_eq!(call(&plain, nr::__NR_clone3, [0; 6]), errno(38));
        assert_eq!(call(&with_admin, nr::__NR_clone3, [0; 6]), allow);
        assert_eq!(call(&plain, nr::__NR_read, [0; 6]), errno(EPERM));
        assert_eq!(call(&plain, nr::__NR_write, [0; 6]), allow);
        assert_eq!(call(&plain, nr::__NR_close, [0; 6]), errno(EPERM));
        assert_eq!(call(&plain, nr::__NR_ptrace, [0; 6]), allow);
        assert_eq!(call(&plain, nr::__NR_fsopen, [0; 6]), errno(EPERM));
    }

    #[test]
    fn a_bad_profile_says_what_is_wrong() {
        let err = |json: &str| compile(json, capabilities::DEFAULT, KERNEL).unwrap_err();
        assert!(err("{").starts_with("not a profile"));
        assert!(err(r#"{"syscalls": []}"#).contains("defaultAction"));
        assert_eq!(
            err(r#"{"defaultAction": "SCMP_ACT_MAYBE"}"#),
            "unknown action \"SCMP_ACT_MAYBE\""
        );
        assert!(err(r#"{"defaultAction": "SCMP_ACT_NOTIFY"}"#).contains("listener"));
        assert_eq!(
            err(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 6, "value": 1, "op": "SCMP_CMP_EQ"}]}]}"#
            ),
            "the rule of read: argument index 6 (0-5)"
        );
        assert_eq!(
            err(
                r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_ALLOW",
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ROUGHLY"}]}]}"#
            ),
            "the rule of read: unknown comparison \"SCMP_CMP_ROUGHLY\""
        );
        assert!(err(
            r#"{"defaultAction": "SCMP_ACT_ALLOW", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}"#
        )
        .contains("flags"));
    }

    #[test]
    fn a_profile_like_dockers_compiles_to_what_the_default_filter_answers() {
        // The default filter's calls as a profile: allowed ones by name, the
        // rest refused by default; the program answers as the default does.
        let names: Vec<String> = crate::syscall_names::NAMES
            .iter()
            .filter(|(_, n)| {
                call(&seccomp::default_filter(capabilities::DEFAULT), *n, [0; 6])
                    == SECCOMP_RET_ALLOW
            })
            .map(|(name, _)| format!("\"{name}\""))
            .collect();
        let json = format!(
            r#"{{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{{"names": [{}], "action": "SCMP_ACT_ALLOW"}}]}}"#,
            names.join(",")
        );
        let f = filter(&json);
        let d = seccomp::default_filter(capabilities::DEFAULT);
        for (_, n) in crate::syscall_names::NAMES {
            if call(&d, *n, [0; 6]) == SECCOMP_RET_ALLOW {
                assert_eq!(call(&f, *n, [0; 6]), SECCOMP_RET_ALLOW, "{n}");
            } else {
                assert_ne!(call(&f, *n, [0; 6]), SECCOMP_RET_ALLOW, "{n}");
            }
        }
        assert!(f.instructions().len() < 200, "{}", f.instructions().len());
    }

    #[test]
    fn a_profile_in_dockers_shape_reads_as_docker_means_it() {
        // The shape of moby's default.json: an archMap with a null list, a
        // comment, rules for other architectures, capability rules that
        // exclude each other, a masked clone.
        let json = r#"{
          "defaultAction": "SCMP_ACT_ERRNO", "defaultErrnoRet": 1,
          "archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86"]},
                      {"architecture": "SCMP_ARCH_RISCV64", "subArchitectures": null}],
          "syscalls": [
            {"names": ["read", "exit_group", "arch_prctl_nonexistent"], "action": "SCMP_ACT_ALLOW"},
            {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW", "includes": {"minKernel": "4.8"}},
            {"names": ["arch_prctl"], "action": "SCMP_ACT_ALLOW", "includes": {"arches": ["amd64", "x32"]}},
            {"names": ["bpf", "clone", "clone3", "mount"], "action": "SCMP_ACT_ALLOW",
             "includes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 0, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
             "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390", "s390x"]}},
            {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
             "args": [{"index": 1, "value": 2114060288, "op": "SCMP_CMP_MASKED_EQ"}],
             "comment": "s390 parameter ordering for clone is different",
             "includes": {"arches": ["s390", "s390x"]}, "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["clone3"], "action": "SCMP_ACT_ERRNO", "errnoRet": 38,
             "excludes": {"caps": ["CAP_SYS_ADMIN"]}},
            {"names": ["bpf"], "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_BPF"]}}
          ]}"#;
        let f = filter(json);
        let allow = SECCOMP_RET_ALLOW;
        let fork = 0x0120_0011;
        assert_eq!(call(&f, nr::__NR_clone, [fork, 0, 0, 0, 0, 0]), allow);
        assert_eq!(
            call(&f, nr::__NR_clone, [fork | 0x1000_0000, 0, 0, 0, 0, 0]),
            errno(1)
        );
        // The s390 rule (flags in the second argument) is not this machine's.
        assert_eq!(
            call(&f, nr::__NR_clone, [0x1000_0000, fork, 0, 0, 0, 0]),
            errno(1)
        );
        assert_eq!(call(&f, nr::__NR_clone3, [0; 6]), errno(38));
        assert_eq!(call(&f, nr::__NR_arch_prctl, [0; 6]), allow);
        assert_eq!(call(&f, nr::__NR_ptrace, [0; 6]), allow);
        assert_eq!(call(&f, nr::__NR_bpf, [0; 6]), errno(1));
        assert_eq!(call(&f, nr::__NR_mount, [0; 6]), errno(1));
        let admin = capabilities::DEFAULT | capabilities::bit("SYS_ADMIN").unwrap();
        let f = compile(json, admin, KERNEL).unwrap();
        assert_eq!(
            call(&f, nr::__NR_clone, [fork | 0x1000_0000, 0, 0, 0, 0, 0]),
            allow
        );
        assert_eq!(call(&f, nr::__NR_clone3, [0; 6]), allow);
        assert_eq!(call(&f, nr::__NR_mount, [0; 6]), allow);
        let bpf = capabilities::DEFAULT | capabilities::bit("BPF").unwrap();
        let f = compile(json, bpf, KERNEL).unwrap();
        assert_eq!(call(&f, nr::__NR_bpf, [0; 6]), allow);
    }

    #[test]
    fn kernel_versions_read_as_numbers() {
        assert_eq!(version("6.18.44-fc-v782"), Some((6, 18)));
        assert_eq!(version("4.8"), Some((4, 8)));
        assert_eq!(version("x"), None);
    }
}
