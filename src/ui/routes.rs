//! The UI's pages under projects and groups, as GitLab lays them out (`/<project path>/-/...`,
//! `/groups/<group path>/-/...`): a path is parsed into the page it names, or none.

/// A page (or form target) under a project or group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UiRoute {
    /// `/<project>/-/packages`
    Packages(String),
    /// `/<project>/-/packages/<id>`
    Package(String, i64),
    /// `/<project>/-/packages/<id>/delete` (POST)
    DeletePackage(String, i64),
    /// `/<project>/-/packages/<id>/files/<file id>/download`
    Download(String, i64, i64),
    /// `/<project>/-/packages/<id>/files/<file id>/delete` (POST)
    DeleteFile(String, i64, i64),
    /// `/groups/<group>/-/settings/packages_and_registries`
    GroupSettings(String),
    /// `/<project>/-/settings/repository` (deploy tokens; POST: make one)
    DeployTokens(String),
    /// `/<project>/-/settings/repository/deploy_tokens/<id>/revoke` (POST)
    RevokeDeployToken(String, i64),
}

/// The page `path` names, if any (percent-decoded segments; no `..`).
pub fn parse(path: &str) -> Option<UiRoute> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .ok()?;
    let path = decoded.trim_start_matches('/');
    let (owner, rest) = path.split_once("/-/")?;
    if owner.is_empty()
        || owner
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return None;
    }
    if let Some(group) = owner.strip_prefix("groups/") {
        return (rest == "settings/packages_and_registries")
            .then(|| UiRoute::GroupSettings(group.to_string()));
    }
    let project = owner.to_string();
    let parts: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let id = |s: &str| s.parse::<i64>().ok();
    Some(match parts.as_slice() {
        ["packages"] => UiRoute::Packages(project),
        ["packages", p] => UiRoute::Package(project, id(p)?),
        ["packages", p, "delete"] => UiRoute::DeletePackage(project, id(p)?),
        ["packages", p, "files", f, "download"] => UiRoute::Download(project, id(p)?, id(f)?),
        ["packages", p, "files", f, "delete"] => UiRoute::DeleteFile(project, id(p)?, id(f)?),
        ["settings", "repository"] => UiRoute::DeployTokens(project),
        ["settings", "repository", "deploy_tokens", t, "revoke"] => {
            UiRoute::RevokeDeployToken(project, id(t)?)
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_found_under_projects_and_groups() {
        let p = |s: &str| s.to_string();
        assert_eq!(
            parse("/team/app/-/packages"),
            Some(UiRoute::Packages(p("team/app")))
        );
        assert_eq!(
            parse("/team/sub/app/-/packages/7"),
            Some(UiRoute::Package(p("team/sub/app"), 7))
        );
        assert_eq!(
            parse("/team/app/-/packages/7/files/9/download"),
            Some(UiRoute::Download(p("team/app"), 7, 9))
        );
        assert_eq!(
            parse("/groups/team/-/settings/packages_and_registries"),
            Some(UiRoute::GroupSettings(p("team")))
        );
        for nothing in [
            "/",
            "/team/app",
            "/team/app/-/other",
            "/../x/-/packages",
            "/team/app/-/packages/x",
        ] {
            assert_eq!(parse(nothing), None, "{nothing}");
        }
    }
}
