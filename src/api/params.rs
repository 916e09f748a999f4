//! GitLab's request parameters, as Grape reads them: from the query string and from the body,
//! whether JSON (python-gitlab) or form-encoded (`curl --data`), with `name[]=a&name[]=b` and
//! comma-separated lists for arrays. Typed reads name the parameter in Grape's own words when
//! it is missing or of the wrong type.

use super::extract::invalid;
use crate::domain::Timestamp;
use crate::registry::Error;
use axum::extract::{FromRequest, Request};
use axum::http::header;
use serde_json::{Map, Value};

/// At most this much body is read for parameters (they are a few fields).
const BODY_LIMIT: usize = 64 << 10;

/// Every parameter of a request: body fields over query fields of the same name.
#[derive(Debug, Default)]
pub struct Params(Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = Error;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let mut params = Map::new();
        if let Some(query) = request.uri().query() {
            add_pairs(&mut params, query.as_bytes());
        }
        let json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        let body = axum::body::Bytes::from_request(request, state)
            .await
            .map_err(|_| Error::BadRequest("the request body could not be read".into()))?;
        if body.len() > BODY_LIMIT {
            return Err(Error::BadRequest("the parameters are too large".into()));
        }
        if json && !body.is_empty() {
            match serde_json::from_slice::<Value>(&body) {
                Ok(Value::Object(fields)) => params.extend(fields),
                _ => return Err(Error::BadRequest("the body is not a JSON object".into())),
            }
        } else if !body.is_empty() {
            add_pairs(&mut params, &body);
        }
        Ok(Params(params))
    }
}

/// `a=1&b[]=x&b[]=y` into `params` (`b` an array).
fn add_pairs(params: &mut Map<String, Value>, encoded: &[u8]) {
    for (key, value) in form_urlencoded::parse(encoded) {
        if let Some(name) = key.strip_suffix("[]") {
            let entry = params
                .entry(name.to_string())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(items) = entry {
                items.push(Value::String(value.into_owned()));
            }
        } else {
            params.insert(key.into_owned(), Value::String(value.into_owned()));
        }
    }
}

impl Params {
    #[cfg(test)]
    pub fn from_map(map: Map<String, Value>) -> Self {
        Params(map)
    }

    /// The names of every parameter given.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// A parameter as given, `null` included (`None`: not given).
    pub fn raw(&self, name: &str) -> Option<&Value> {
        self.0.get(name)
    }

    fn present(&self, name: &str) -> Option<&Value> {
        self.0.get(name).filter(|v| !v.is_null())
    }

    /// An object parameter (JSON bodies only), if given.
    pub fn object(&self, name: &str) -> Option<&Map<String, Value>> {
        self.present(name).and_then(Value::as_object)
    }

    /// A string parameter, if given.
    pub fn string(&self, name: &str) -> Result<Option<String>, Error> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(invalid(&format!("{name} is invalid"))),
        }
    }

    /// A string parameter that must be given.
    pub fn required_string(&self, name: &str) -> Result<String, Error> {
        self.string(name)?
            .filter(|s| !s.is_empty())
            .ok_or_else(|| invalid(&format!("{name} is missing")))
    }

    /// An integer parameter (a number, or a string of one), if given.
    pub fn integer(&self, name: &str) -> Result<Option<i64>, Error> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| invalid(&format!("{name} is invalid"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| invalid(&format!("{name} is invalid"))),
            Some(_) => Err(invalid(&format!("{name} is invalid"))),
        }
    }

    pub fn required_integer(&self, name: &str) -> Result<i64, Error> {
        self.integer(name)?
            .ok_or_else(|| invalid(&format!("{name} is missing")))
    }

    /// A boolean parameter (`true`/`false`, `1`/`0`, as Grape coerces), if given.
    pub fn boolean(&self, name: &str) -> Result<Option<bool>, Error> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) => crate::domain::parse_bool(s)
                .map(Some)
                .ok_or_else(|| invalid(&format!("{name} is invalid"))),
            Some(_) => Err(invalid(&format!("{name} is invalid"))),
        }
    }

    /// A list parameter: a JSON array, `name[]=` pairs, or one comma-separated string.
    pub fn list(&self, name: &str) -> Result<Option<Vec<String>>, Error> {
        match self.present(name) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    _ => Err(invalid(&format!("{name} is invalid"))),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(Value::String(s)) => Ok(Some(
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect(),
            )),
            Some(_) => Err(invalid(&format!("{name} is invalid"))),
        }
    }

    /// A date (`YYYY-MM-DD`, or an ISO-8601 time whose date is taken), if given: midnight UTC.
    pub fn date(&self, name: &str) -> Result<Option<Timestamp>, Error> {
        let Some(text) = self.string(name)? else {
            return Ok(None);
        };
        if text.is_empty() {
            return Ok(None);
        }
        Timestamp::parse_date(text.get(..10).unwrap_or(&text))
            .map(Some)
            .ok_or_else(|| invalid(&format!("{name} is invalid")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pairs_and_json_read_alike() {
        let mut form = Map::new();
        add_pairs(
            &mut form,
            b"name=ci&scopes[]=api&scopes[]=read_api&admin=true&id=7",
        );
        let form = Params(form);
        let json = Params::from_map(
            json!({"name": "ci", "scopes": ["api", "read_api"], "admin": true, "id": 7})
                .as_object()
                .unwrap()
                .clone(),
        );
        for p in [&form, &json] {
            assert_eq!(p.required_string("name").unwrap(), "ci");
            assert_eq!(p.list("scopes").unwrap().unwrap(), ["api", "read_api"]);
            assert_eq!(p.boolean("admin").unwrap(), Some(true));
            assert_eq!(p.integer("id").unwrap(), Some(7));
            assert!(p.required_string("missing").is_err());
        }
        let mut comma = Map::new();
        add_pairs(
            &mut comma,
            b"scopes=api,read_api&expires_at=2030-01-31T00:00:00Z",
        );
        let comma = Params(comma);
        assert_eq!(comma.list("scopes").unwrap().unwrap(), ["api", "read_api"]);
        assert_eq!(
            comma.date("expires_at").unwrap(),
            Timestamp::parse_date("2030-01-31")
        );
    }
}
