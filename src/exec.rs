//! `exec`: one more command in a running container, as `docker exec` runs it.
//!
//! The command is a child of this process, made in the container's PID
//! namespace (the parent joins it for its children before `clone3`), which
//! joins the container's other namespaces itself (`setns` on a pidfd of the
//! container's PID 1: mount, UTS, IPC, network, cgroup); from there on it is a
//! container start without mounts: terminal, filter, working directory,
//! capabilities, `execve` ([`crate::child`]). It gets what the container's
//! command got: its environment (from the record), its user, its
//! capabilities, its system-call filter and `no_new_privs`.

use std::os::fd::{AsFd, OwnedFd};

use crate::container::Status;
use crate::error::{Error, Result};
use crate::launch::{self, Forwarder, Launched};
use crate::plan::{ChildPlan, PlanInput};
use crate::store::Store;

/// What to run in a running container (`tupper exec`).
#[derive(Debug, Clone, Default)]
pub struct ExecSpec {
    /// The command and its arguments (not empty).
    pub command: Vec<String>,
    /// `KEY=VALUE` (or `KEY`, from tupper's environment) entries over the
    /// container's environment (`-e`).
    pub env: Vec<String>,
    /// The working directory; default: the container's (`run -w`), else `/`.
    pub workdir: Option<String>,
    /// The user to run as (`-u USER[:GROUP]`, looked up in the container's
    /// `/etc/passwd` and `/etc/group`); default: the container's.
    pub user: Option<String>,
    /// Every capability tupper has (`--privileged`, docker's), whatever
    /// the container's; its system-call filter stays the container's.
    pub privileged: bool,
    /// A terminal of its own (`-t`).
    pub tty: bool,
    /// The terminal's size (rows, columns).
    pub tty_size: Option<(u16, u16)>,
    /// Its stdin, stdout and stderr, in place of tupper's (a health
    /// check's probe, see [`crate::health`]); not with `tty`.
    pub stdio: Option<std::sync::Arc<crate::launch::Stdio>>,
}

/// A command running in a container.
#[derive(Debug)]
pub struct Exec {
    /// `None` once waited for.
    launched: Option<Launched>,
    own_process_group: bool,
    /// Keeps the container's PID 1 pinned while the command runs.
    _pid1: OwnedFd,
    /// Its `exec_die` event, told when it is waited for.
    die: Option<crate::events::ExecDie>,
}

impl Store {
    /// Starts `spec` in running container `name_or_id`; returns once the
    /// command runs (or fails to start, with `run`'s errors and exit codes).
    pub fn exec(&self, name_or_id: &str, spec: &ExecSpec) -> Result<Exec> {
        if spec.command.is_empty() {
            return Err(Error::msg("exec needs a command"));
        }
        let rec = self.find_container(name_or_id)?;
        let not_running =
            || Error::msg(format!("exec in container {name_or_id}: it is not running"));
        if rec.status != Status::Running {
            return Err(not_running());
        }
        if rec.paused {
            return Err(
                Error::msg(format!("exec in container {name_or_id}: it is paused"))
                    .with_advice("`tupper unpause` it first"),
            );
        }
        let (pid, pid1) = self.pin_pid1(&rec.id).ok_or_else(not_running)?;
        // The container's environment (docker: its configured one), then
        // the user's. A record of an older tupper has none: then the one
        // PID 1 started with.
        let mut env = match rec.env.is_empty() {
            false => rec.env.clone(),
            true => environment_of(pid, &pid1).ok_or_else(not_running)?,
        };
        let security = rec.security.clone();
        // `-u`: looked up in the container's own /etc files (as they are
        // now), its HOME over PID 1's; else the container's user.
        let user = match &spec.user {
            Some(u) => {
                let root = crate::fsutil::open_dir(rustix::fs::CWD, self.container_path(&rec.id))
                    .map_err(|e| {
                    Error::os(format!("open the root of container {name_or_id}"), e)
                })?;
                let resolved = crate::user::resolve_in_image(
                    root.as_fd(),
                    &format!("container {name_or_id}"),
                    Some(u),
                    &[],
                )?;
                env.push(format!("HOME={}", resolved.home));
                Some(resolved)
            }
            None => {
                security
                    .as_ref()
                    .and_then(|s| s.user.as_ref())
                    .map(|u| crate::user::Resolved {
                        uid: u.uid,
                        gid: u.gid,
                        groups: u.groups.clone(),
                        home: "/".to_string(),
                    })
            }
        };
        env.extend(spec.env.iter().cloned());
        let capabilities = match spec.privileged {
            true => crate::capabilities::available()?,
            false => security.as_ref().map_or(crate::capabilities::DEFAULT, |s| {
                s.capabilities
                    .iter()
                    .filter_map(|n| crate::capabilities::bit(n))
                    .fold(0, |a, b| a | b)
            }),
        };
        let term = spec
            .tty
            .then(|| std::env::var("TERM").unwrap_or_else(|_| "xterm".to_string()));
        let workdir = spec.workdir.as_deref().or(rec.workdir.as_deref());
        // The container's --ulimits, as docker's exec gives them.
        let ulimits = crate::ulimit::parse_all(&rec.ulimits)?;
        let plan = ChildPlan::new(
            std::path::Path::new("/"),
            &PlanInput {
                hostname: &rec.hostname,
                command: &spec.command,
                env: &env,
                workdir,
                term: term.as_deref(),
                own_process_group: !spec.tty
                    && (spec.stdio.is_some() || !rustix::termios::isatty(rustix::stdio::stdin())),
                seccomp_unconfined: security.as_ref().is_some_and(|s| s.seccomp == "unconfined"),
                seccomp_profile: security.as_ref().and_then(|s| s.seccomp_profile.as_deref()),
                no_new_privileges: security.as_ref().is_some_and(|s| s.no_new_privileges),
                capabilities,
                tty: spec.tty,
                joins: true,
                user: user.as_ref(),
                ulimits: &ulimits,
                userns: security.as_ref().is_some_and(|s| s.userns.is_some()),
                no_subvolumes: rec.storage_size.is_some(),
                ..PlanInput::default()
            },
        )?;
        // Its command counts against the container's limits: in its cgroup
        // (cloned into it with v2, moved before the go-ahead with v1).
        let cgroup = crate::cgroup::Cgroup::open(&rec.cgroups, &rec.id)?;
        let mut launched = launch::spawn(
            &plan,
            &crate::run::LOOPBACK_UP,
            None,
            Some(pid1.as_fd()),
            cgroup.as_ref().and_then(|c| c.clone_into()),
            &launch::Trees {
                stdio: spec.stdio.clone(),
                ..Default::default()
            },
        )?;
        if let Some(c) = &cgroup {
            if let Err(e) = c.attach(launched.pid.as_raw_nonzero().get()) {
                launched.kill();
                return Err(e);
            }
        }
        if let Some(adj) = rec.oom_score_adj {
            if let Err(e) = crate::run::set_oom_score_adj(launched.pid.as_raw_nonzero().get(), adj)
            {
                launched.kill();
                return Err(e);
            }
        }
        if let Err(e) = crate::run::size_terminal(&mut launched, spec.tty_size) {
            launched.kill();
            return Err(e);
        }
        launched.go()?;
        match launched.await_exec()? {
            None => Ok(Exec {
                launched: Some(launched),
                own_process_group: plan.own_process_group,
                _pid1: pid1,
                die: self.exec_started(&rec, &spec.command),
            }),
            Some(report) => {
                let _ = launch::wait(launched.pidfd.as_fd());
                Err(launch::report_error(&plan, report))
            }
        }
    }
}

/// The environment process `pid` started with, if it is still the process
/// of `pidfd` once read (its pidfd, which pins the pid, not readable yet).
fn environment_of(pid: i32, pidfd: &OwnedFd) -> Option<Vec<String>> {
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let mut ready = [rustix::event::PollFd::new(
        pidfd,
        rustix::event::PollFlags::IN,
    )];
    let now = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    if rustix::event::poll(&mut ready, Some(&now)).ok()? != 0 {
        return None;
    }
    Some(
        environ
            .split(|b| *b == 0)
            .filter(|e| e.contains(&b'='))
            .map(|e| String::from_utf8_lossy(e).into_owned())
            .collect(),
    )
}

impl Exec {
    /// A pidfd of the command's process, until it is waited for.
    pub fn pidfd(&self) -> Option<std::os::fd::BorrowedFd<'_>> {
        self.launched.as_ref().map(|l| l.pidfd.as_fd())
    }

    /// The master end of the command's terminal (`ExecSpec::tty`), once.
    pub fn take_terminal(&mut self) -> Option<OwnedFd> {
        self.launched.as_mut().and_then(|l| l.terminal.take())
    }

    /// Waits for the command to end; its exit code (docker's convention).
    pub fn wait(mut self) -> Result<i32> {
        let Some(launched) = self.launched.take() else {
            return Err(Error::msg("exec: waited for twice"));
        };
        // A terminal nobody took stays open until the command ends.
        let code = launch::wait(launched.pidfd.as_fd())?;
        if let Some(die) = self.die.take() {
            die.tell(code);
        }
        Ok(code)
    }

    /// Like [`Exec::wait`], passing on the signals `forwarder` receives, and
    /// with a terminal not taken, relaying it to tupper's stdin and stdout.
    pub fn wait_forwarding(mut self, forwarder: &Forwarder) -> Result<i32> {
        let Some(mut launched) = self.launched.take() else {
            return Err(Error::msg("exec: waited for twice"));
        };
        let pidfd = launched.pidfd.as_fd();
        let code = match launched.terminal.take() {
            Some(t) => crate::terminal::relay(t, pidfd, forwarder),
            None => forwarder.wait(pidfd, self.own_process_group),
        }?;
        if let Some(die) = self.die.take() {
            die.tell(code);
        }
        Ok(code)
    }
}

impl Drop for Exec {
    /// Dropped while running: the command is killed and reaped.
    fn drop(&mut self) {
        if let Some(launched) = self.launched.take() {
            launched.kill();
        }
    }
}
