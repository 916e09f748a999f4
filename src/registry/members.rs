//! Use cases of GitLab's members API on projects and groups: who is a member (directly, or
//! with those inherited from the groups above), and adding, changing and removing members, with
//! GitLab's rules (maintainers manage a project's members and owners a group's; only an owner
//! makes a project owner; a group keeps its last owner).

use super::events::place_event;
use super::{Error, Missing, Registry};
use crate::auth::{Action, Denied, Principal};
use crate::domain::{
    Event, EventType, Group, GroupRef, MembershipTarget, Project, ProjectRef, Role, User,
};
use std::collections::BTreeMap;

/// A project or a group, as the people APIs act on them.
#[derive(Debug, Clone)]
pub enum Place {
    Project(Project),
    Group(Group),
}

/// How a route names its project or group.
#[derive(Debug, Clone)]
pub enum PlaceRef {
    Project(ProjectRef),
    Group(GroupRef),
}

impl Place {
    pub fn target(&self) -> MembershipTarget {
        match self {
            Place::Project(p) => MembershipTarget::Project(p.id),
            Place::Group(g) => MembershipTarget::Group(g.path.clone()),
        }
    }

    /// Itself and every group above it, nearest first.
    fn lineage(&self) -> Vec<MembershipTarget> {
        let (mut targets, mut path) = match self {
            Place::Project(p) => (
                vec![MembershipTarget::Project(p.id)],
                p.namespace_path().to_string(),
            ),
            Place::Group(g) => (Vec::new(), g.path.clone()),
        };
        loop {
            targets.push(MembershipTarget::Group(path.clone()));
            match path.rsplit_once('/') {
                Some((parent, _)) => path = parent.to_string(),
                None => return targets,
            }
        }
    }
}

/// `access_level` as a role, or GitLab's validation error.
pub fn role_of_level(level: i64) -> Result<Role, Error> {
    Role::from_access_level(level).ok_or_else(|| Error::Validation {
        field: "access_level",
        message: "is not included in the list".into(),
    })
}

impl Registry {
    /// The project or group a route names, if the signed-in caller may see it.
    pub async fn place(&self, principal: &Principal, at: &PlaceRef) -> Result<Place, Error> {
        self.signed_in(principal).await?;
        Ok(match at {
            PlaceRef::Project(reference) => Place::Project(
                self.api_project(principal, reference, Action::Read)
                    .await?
                    .project,
            ),
            PlaceRef::Group(reference) => {
                Place::Group(self.visible_group(principal, reference).await?)
            }
        })
    }

    /// The role the signed-in caller holds on `place`.
    pub async fn role_on(&self, user: &User, place: &Place) -> Result<Option<Role>, Error> {
        match place {
            Place::Project(p) => self.project_role(user, p).await,
            Place::Group(g) => self.group_role(user, g).await,
        }
    }

    /// May the caller manage `place`'s members (and deploy tokens, and trust rules)? Projects:
    /// maintainers; groups: owners.
    pub(crate) async fn manager(
        &self,
        principal: &Principal,
        place: &Place,
    ) -> Result<User, Error> {
        let user = self.signed_in(principal).await?;
        let needed = match place {
            Place::Project(_) => Role::Maintainer,
            Place::Group(_) => Role::Owner,
        };
        match self.role_on(&user, place).await? {
            Some(role) if role >= needed => Ok(user),
            _ => Err(Denied::Forbidden.into()),
        }
    }

    /// Members of `place`: direct ones, or with `all` those of every group above it too (each
    /// user once, with their highest role).
    pub async fn members(&self, place: &Place, all: bool) -> Result<Vec<(User, Role)>, Error> {
        let targets = if all {
            place.lineage()
        } else {
            vec![place.target()]
        };
        let mut roles: BTreeMap<i64, Role> = BTreeMap::new();
        for target in targets {
            for m in self.meta.members_of(&target).await? {
                let role = roles.entry(m.user_id).or_insert(m.role);
                *role = (*role).max(m.role);
            }
        }
        let mut members = Vec::with_capacity(roles.len());
        for (user_id, role) in roles {
            if let Some(user) = self.meta.user_by_id(user_id).await? {
                members.push((user, role));
            }
        }
        Ok(members)
    }

    /// One member of `place` (direct, or with `all` inherited too).
    pub async fn member(
        &self,
        place: &Place,
        user_id: i64,
        all: bool,
    ) -> Result<(User, Role), Error> {
        self.members(place, all)
            .await?
            .into_iter()
            .find(|(u, _)| u.id == user_id)
            .ok_or(Error::NotFound(Missing::Member))
    }

    /// `POST .../members`: `who` (a user id, or a username) joins `place` at `level`.
    pub async fn add_member(
        &self,
        principal: &Principal,
        place: &Place,
        who: Result<i64, String>,
        level: i64,
    ) -> Result<(User, Role), Error> {
        let user = match who {
            Ok(id) => self.meta.user_by_id(id).await?,
            Err(name) => self.meta.user_by_name(&name).await?,
        }
        .ok_or(Error::NotFound(Missing::User))?;
        if self.member(place, user.id, false).await.is_ok() {
            return Err(Error::Conflict("Member already exists".into()));
        }
        let caller = self.signed_in(principal).await?;
        self.may_grant(&caller, place, level).await?;
        self.manager(principal, place).await?;
        let role = role_of_level(level)?;
        let event = member_event(EventType::MemberUpdated, principal, place, &user)
            .with_detail_field("access_level", role.access_level());
        self.meta
            .set_membership(user.id, &place.target(), role, &event)
            .await?;
        self.identities.cache().clear();
        Ok((user, role))
    }

    /// Only an owner (or an administrator) makes someone a project's owner.
    async fn may_grant(&self, caller: &User, place: &Place, level: i64) -> Result<(), Error> {
        let owner_level = Role::Owner.access_level();
        if matches!(place, Place::Project(_))
            && level == owner_level
            && self.role_on(caller, place).await? != Some(Role::Owner)
        {
            return Err(Denied::Forbidden.into());
        }
        Ok(())
    }

    /// `PUT .../members/:user_id`: change a direct member's level.
    pub async fn update_member(
        &self,
        principal: &Principal,
        place: &Place,
        user_id: i64,
        level: i64,
    ) -> Result<(User, Role), Error> {
        let (user, current) = self.member(place, user_id, false).await?;
        let caller = self.manager(principal, place).await?;
        self.may_grant(&caller, place, level).await?;
        if matches!(place, Place::Project(_)) && current == Role::Owner {
            self.may_grant(&caller, place, Role::Owner.access_level())
                .await?;
        }
        let role = role_of_level(level)?;
        if role < Role::Owner {
            self.keep_last_owner(place, user_id, current).await?;
        }
        let event = member_event(EventType::MemberUpdated, principal, place, &user)
            .with_detail_field("access_level", role.access_level());
        self.meta
            .set_membership(user.id, &place.target(), role, &event)
            .await?;
        self.identities.cache().clear();
        Ok((user, role))
    }

    /// `DELETE .../members/:user_id`: a manager removes a member, or a member leaves.
    pub async fn remove_member(
        &self,
        principal: &Principal,
        place: &Place,
        user_id: i64,
    ) -> Result<(), Error> {
        let (user, current) = self.member(place, user_id, false).await?;
        let caller = self.signed_in(principal).await?;
        if caller.id != user_id {
            self.manager(principal, place).await?;
            // Removing a project's owner is taking their ownership: an owner's to do.
            if current == Role::Owner {
                self.may_grant(&caller, place, Role::Owner.access_level())
                    .await?;
            }
        }
        self.keep_last_owner(place, user_id, current).await?;
        let event = member_event(EventType::MemberRemoved, principal, place, &user);
        self.meta
            .remove_membership(user_id, &place.target(), &event)
            .await?;
        self.identities.cache().clear();
        Ok(())
    }

    /// A group's last direct owner cannot leave or be lowered.
    async fn keep_last_owner(
        &self,
        place: &Place,
        user_id: i64,
        current: Role,
    ) -> Result<(), Error> {
        if !matches!(place, Place::Group(_)) || current != Role::Owner {
            return Ok(());
        }
        let owners = self
            .meta
            .members_of(&place.target())
            .await?
            .into_iter()
            .filter(|m| m.role == Role::Owner && m.user_id != user_id)
            .count();
        if owners == 0 {
            Err(Denied::Forbidden.into())
        } else {
            Ok(())
        }
    }
}

/// An event about `user`'s membership of `place`.
fn member_event(kind: EventType, principal: &Principal, place: &Place, user: &User) -> Event {
    place_event(kind, principal, place).with_detail(serde_json::json!({
        "user_id": user.id,
        "username": user.username,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Timestamp, Visibility};

    #[test]
    fn a_project_inherits_from_every_group_above_it() {
        let project = Project {
            id: 7,
            name: "app".into(),
            path_with_namespace: "a/b/app".into(),
            namespace_id: 2,
            visibility: Visibility::Private,
            created_at: Timestamp::from_millis(0),
        };
        assert_eq!(
            Place::Project(project).lineage(),
            vec![
                MembershipTarget::Project(7),
                MembershipTarget::Group("a/b".into()),
                MembershipTarget::Group("a".into()),
            ]
        );
        assert!(role_of_level(15).is_err() && role_of_level(40).is_ok());
    }
}
