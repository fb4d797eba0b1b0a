//! Who scripts run as. Switching user needs root (CAP_SETUID and CAP_SETGID): xvs run by
//! root runs them as `script_user`, by default `nobody` (not `xvs`, whose group reads the
//! configuration and the sync key); xvs run as another user (the packaged unit runs it
//! as `xvs`) runs them as itself, stripped of its capabilities (`sys/child.rs`), and
//! refuses a `script_user` it cannot become.

use anyhow::{bail, Context, Result};
use nix::unistd::{Group, User};
use xvs_config::ScriptUser;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
    /// For messages.
    pub name: String,
    /// This process's own identity: nothing to switch.
    own: bool,
}

impl Identity {
    /// This process's user and group.
    pub fn own() -> Identity {
        let uid = nix::unistd::geteuid().as_raw();
        Identity {
            uid,
            gid: nix::unistd::getegid().as_raw(),
            name: User::from_uid(uid.into())
                .ok()
                .flatten()
                .map_or_else(|| uid.to_string(), |u| u.name),
            own: true,
        }
    }

    /// Who scripts run as, for `script_user` (None: the default).
    pub fn for_scripts(wanted: Option<&ScriptUser>) -> Result<Identity> {
        let me = Identity::own();
        let root = me.uid == 0;
        let Some(w) = wanted else {
            if !root {
                return Ok(me);
            }
            let Some(u) = User::from_name("nobody").context("reading the user database")? else {
                bail!("no `nobody` user to run scripts as: set `script_user`");
            };
            return Ok(Identity {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
                name: u.name,
                own: false,
            });
        };
        let user = User::from_name(&w.user)
            .context("reading the user database")?
            .with_context(|| format!("script_user: no user {:?} on this host", w.user))?;
        let gid = match &w.group {
            Some(g) => Group::from_name(g)
                .context("reading the group database")?
                .with_context(|| format!("script_user: no group {g:?} on this host"))?
                .gid
                .as_raw(),
            None => user.gid.as_raw(),
        };
        let id = Identity {
            uid: user.uid.as_raw(),
            gid,
            name: user.name,
            own: false,
        };
        if !root && (id.uid != me.uid || id.gid != me.gid) {
            bail!(
                "script_user {:?}: xvs runs as {} and cannot switch user (that needs root); remove script_user, or name xvs's own user",
                w.user,
                me.name
            );
        }
        Ok(id)
    }

    /// Makes `cmd` run as this identity (no supplementary groups: std drops them when
    /// root switches user).
    pub fn apply(&self, cmd: &mut tokio::process::Command) {
        if !self.own {
            cmd.uid(self.uid).gid(self.gid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_runs_scripts_as_an_unprivileged_user_by_default() {
        if !nix::unistd::geteuid().is_root() {
            return;
        }
        let id = Identity::for_scripts(None).unwrap();
        assert_ne!(id.uid, 0, "{id:?}");
        assert_eq!(id.name, "nobody", "{id:?}");
        let root = Identity::for_scripts(Some(&ScriptUser {
            user: "root".into(),
            group: None,
        }))
        .unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        let e = Identity::for_scripts(Some(&ScriptUser {
            user: "no-such-user-xvs".into(),
            group: None,
        }))
        .unwrap_err();
        assert!(
            e.to_string().contains("no user \"no-such-user-xvs\""),
            "{e}"
        );
    }
}
