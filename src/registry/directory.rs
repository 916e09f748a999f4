//! Use cases of GitLab's projects and groups APIs: what a caller may see (a project they may
//! read, a group they belong to or may read a project of), with their roles there, and making
//! projects and groups (an administrator anywhere; a group's maintainers its projects, its
//! owners its subgroups). Whoever makes a group owns it.

use super::events::event;
use super::{Error, Missing, Registry};
use crate::auth::{self, Action, Denied, Principal};
use crate::domain::{
    EventType, Group, GroupRef, NewGroup, Project, Role, Timestamp, User, Visibility, valid_path,
    valid_segment,
};
use crate::store::StoreError;

/// A project a caller sees, with their roles on it: directly, and through its groups.
pub struct SeenProject {
    pub project: Project,
    pub group: Group,
    pub roles: Option<(Option<Role>, Option<Role>)>,
}

/// A project to make.
pub struct ProjectRequest {
    pub path: String,
    pub namespace_id: Option<i64>,
    pub visibility: Option<String>,
}

impl Registry {
    /// Every project `principal` may read, newest first.
    pub async fn visible_projects(&self, principal: &Principal) -> Result<Vec<SeenProject>, Error> {
        let user = self.signed_in(principal).await.ok();
        let memberships = self.memberships_of_principal(principal).await?;
        let groups = self.meta.groups().await?;
        let mut seen = Vec::new();
        for project in self.meta.projects().await?.into_iter().rev() {
            let readable = user.as_ref().is_some_and(|u| u.admin)
                || auth::decide(principal, Action::Read, &project, &memberships).is_ok();
            if !readable {
                continue;
            }
            seen.push(self.seen(project, &groups, user.as_ref()).await?);
        }
        Ok(seen)
    }

    async fn memberships_of_principal(
        &self,
        principal: &Principal,
    ) -> Result<std::sync::Arc<Vec<crate::domain::Membership>>, Error> {
        Ok(match principal.personal_user() {
            Some(id) => self.identities.memberships_of(id).await?,
            None => Default::default(),
        })
    }

    /// `project` as `user` sees it: its group, and their roles (project's own, group's).
    async fn seen(
        &self,
        project: Project,
        groups: &[Group],
        user: Option<&User>,
    ) -> Result<SeenProject, Error> {
        let group = groups
            .iter()
            .find(|g| g.id == project.namespace_id)
            .cloned()
            .ok_or_else(|| {
                StoreError::corrupt(format!("project {}", project.id), "its group is missing")
            })?;
        let roles = match user {
            Some(user) => {
                let memberships = self.identities.memberships_of(user.id).await?;
                let own = memberships
                    .iter()
                    .filter(|m| m.target == crate::domain::MembershipTarget::Project(project.id))
                    .map(|m| m.role)
                    .max();
                Some((own, self.group_role(user, &group).await?))
            }
            None => None,
        };
        Ok(SeenProject {
            project,
            group,
            roles,
        })
    }

    /// `GET /projects/:id`.
    pub async fn visible_project(
        &self,
        principal: &Principal,
        reference: &crate::domain::ProjectRef,
    ) -> Result<SeenProject, Error> {
        let project = self
            .api_project(principal, reference, Action::Read)
            .await?
            .project;
        let user = self.signed_in(principal).await.ok();
        let groups = self.meta.groups().await?;
        self.seen(project, &groups, user.as_ref()).await
    }

    /// `GET /groups`: the groups the signed-in caller belongs to (an administrator: all).
    pub async fn member_groups(&self, principal: &Principal) -> Result<Vec<Group>, Error> {
        let Ok(user) = self.signed_in(principal).await else {
            return Ok(Vec::new());
        };
        let mut groups = Vec::new();
        for group in self.meta.groups().await? {
            if self.group_role(&user, &group).await?.is_some() {
                groups.push(group);
            }
        }
        groups.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(groups)
    }

    /// `GET /groups/:id`: the group, and the projects in it the caller may read.
    pub async fn group_with_projects(
        &self,
        principal: &Principal,
        reference: &GroupRef,
    ) -> Result<(Group, Vec<SeenProject>), Error> {
        let group = self.visible_group(principal, reference).await?;
        let projects = self
            .visible_projects(principal)
            .await?
            .into_iter()
            .filter(|p| p.project.namespace_id == group.id)
            .collect();
        Ok((group, projects))
    }

    /// `POST /projects`: in group `namespace_id`, for its maintainers (or an administrator).
    pub async fn create_project(
        &self,
        principal: &Principal,
        request: ProjectRequest,
    ) -> Result<SeenProject, Error> {
        let user = self.signed_in(principal).await?;
        let namespace_invalid = || Error::Validation {
            field: "namespace",
            message: "is not valid".into(),
        };
        let group = match request.namespace_id {
            Some(id) => self.meta.group_by_id(id).await?,
            None => None,
        }
        .ok_or_else(namespace_invalid)?;
        if self.group_role(&user, &group).await? < Some(Role::Maintainer) {
            return Err(namespace_invalid());
        }
        let visibility = match request.visibility.as_deref() {
            None | Some("private") => Visibility::Private,
            Some("public") => Visibility::Public,
            Some(_) => return Err(super::invalid("visibility does not have a valid value")),
        };
        let full = format!("{}/{}", group.path, request.path);
        if !valid_segment(&request.path) || !valid_path(&full) {
            return Err(Error::Validation {
                field: "path",
                message: "is invalid".into(),
            });
        }
        let taken = || Error::Validation {
            field: "path",
            message: "has already been taken".into(),
        };
        if self.meta.group_by_path(&full).await?.is_some() {
            return Err(taken());
        }
        let created = event(EventType::ProjectCreated, principal)
            .with_detail(serde_json::json!({ "visibility": visibility.as_str() }));
        let project = match self
            .meta
            .create_project(
                &group,
                &request.path,
                visibility,
                Timestamp::now(),
                &created,
            )
            .await
        {
            Err(StoreError::AlreadyExists { .. }) => return Err(taken()),
            other => other?,
        };
        self.identities.cache().clear();
        let groups = self.meta.groups().await?;
        self.seen(project, &groups, Some(&user)).await
    }

    /// `POST /groups`: a top-level group by an administrator, a subgroup by the parent's
    /// owners; its maker owns it.
    pub async fn create_group(
        &self,
        principal: &Principal,
        path: &str,
        parent_id: Option<i64>,
    ) -> Result<Group, Error> {
        let user = self.signed_in(principal).await?;
        let parent = match parent_id {
            Some(id) => Some(
                self.meta
                    .group_by_id(id)
                    .await?
                    .ok_or(Error::NotFound(Missing::Group))?,
            ),
            None => None,
        };
        let allowed = match &parent {
            None => user.admin,
            Some(parent) => self.group_role(&user, parent).await? == Some(Role::Owner),
        };
        if !allowed {
            return Err(Denied::Forbidden.into());
        }
        let full = match &parent {
            Some(parent) => format!("{}/{path}", parent.path),
            None => path.to_string(),
        };
        let failed =
            |why: &str| Error::BadRequest(format!("Failed to save group {{:path=>[\"{why}\"]}}"));
        if !valid_segment(path) || !valid_path(&full) {
            return Err(failed("is invalid"));
        }
        if crate::domain::reserved_path(&full) {
            return Err(failed(&format!("{path} is a reserved name")));
        }
        if self.meta.project_by_path(&full).await?.is_some() {
            return Err(failed("has already been taken"));
        }
        let new = NewGroup {
            path: full,
            parent_id: parent.map(|p| p.id),
            created_at: Timestamp::now(),
            owner: Some(user.id),
        };
        let event = event(EventType::GroupCreated, principal);
        let group = match self.meta.create_group(new, &event).await {
            Err(StoreError::AlreadyExists { .. }) => return Err(failed("has already been taken")),
            other => other?,
        };
        self.identities.cache().clear();
        Ok(group)
    }
}
