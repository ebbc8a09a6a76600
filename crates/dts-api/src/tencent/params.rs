//! Request parameters: un-flattening of dotted GET/v1 keys (`A.B`, `List.0`) and validation of
//! a parameter tree against an action's schema, with the documented error for each mistake.
//!
//! Flattened parameters arrive as strings; the schema says which become integers, booleans,
//! objects or arrays. JSON bodies are typed already and are checked strictly (a string where an
//! integer belongs is an `InvalidParameter`, as the real API does).

use serde_json::{Map, Value};

use super::error::ApiError;
use crate::limits::{self, LimitError};

/// The type of a parameter.
#[derive(Debug)]
pub enum Ty {
    Str,
    Int,
    Bool,
    Obj(&'static [Field]),
    Arr(&'static Ty),
}

/// One field of an object.
#[derive(Debug)]
pub struct Field {
    pub name: &'static str,
    pub ty: Ty,
    pub required: bool,
}

impl Ty {
    fn name(&self) -> &'static str {
        match self {
            Ty::Str => "String",
            Ty::Int => "Integer",
            Ty::Bool => "Boolean",
            Ty::Obj(_) => "Object",
            Ty::Arr(_) => "Array",
        }
    }
}

/// Builds a tree from flat `a.b.0.c = v` pairs: every leaf a string, numeric segments kept as
/// object keys (the schema turns them into arrays).
///
/// Bounded (`crate::limits`): at most `MAX_PARAMS` pairs, names of at most `MAX_NAME_BYTES` and
/// `MAX_DEPTH` segments, values of at most `MAX_VALUE_BYTES`; each refused with
/// `InvalidParameter` naming the limit, before any of the tree is built for that pair.
pub fn unflatten(pairs: &[(String, String)]) -> Result<Value, ApiError> {
    let limit = |e: LimitError| ApiError::invalid_parameter(e.to_string());
    if pairs.len() > limits::MAX_PARAMS {
        return Err(limit(LimitError::TooManyParams));
    }
    let mut root = Map::new();
    for (key, value) in pairs {
        if key.len() > limits::MAX_NAME_BYTES {
            return Err(limit(LimitError::NameTooLong));
        }
        if value.len() > limits::MAX_VALUE_BYTES {
            return Err(limit(LimitError::ValueTooLarge { name: key.clone() }));
        }
        if key.split('.').nth(limits::MAX_DEPTH).is_some() {
            return Err(limit(LimitError::NameTooDeep { name: key.clone() }));
        }
        if key.is_empty() || key.split('.').any(str::is_empty) {
            return Err(ApiError::invalid_parameter(format!("The parameter name `{key}` is malformed.")));
        }
        let segments: Vec<&str> = key.split('.').collect();
        let mut node = &mut root;
        for (i, seg) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            if last {
                if node.contains_key(*seg) {
                    return Err(ApiError::invalid_parameter(format!("The parameter `{key}` is given more than once.")));
                }
                node.insert(seg.to_string(), Value::String(value.clone()));
            } else {
                let entry = node.entry(seg.to_string()).or_insert_with(|| Value::Object(Map::new()));
                node = match entry {
                    Value::Object(m) => m,
                    _ => {
                        return Err(ApiError::invalid_parameter(format!(
                            "The parameter `{}` is both a value and an object.",
                            segments[..=i].join(".")
                        )));
                    }
                };
            }
        }
    }
    Ok(Value::Object(root))
}

/// Checks `value` against an object schema. `from_strings`: the tree came from flattened
/// parameters, so string leaves are converted to the schema's scalar types.
pub fn validate(value: Value, fields: &'static [Field], from_strings: bool) -> Result<Value, ApiError> {
    check_object(value, fields, "", from_strings)
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() { name.to_string() } else { format!("{path}.{name}") }
}

fn wrong_type(path: &str, ty: &Ty) -> ApiError {
    ApiError::invalid_parameter(format!("The parameter `{path}` should be of type {}.", ty.name()))
}

fn check_object(value: Value, fields: &'static [Field], path: &str, from_strings: bool) -> Result<Value, ApiError> {
    let Value::Object(mut map) = value else {
        return Err(ApiError::invalid_parameter(format!(
            "The parameter `{}` should be of type Object.",
            if path.is_empty() { "(request body)" } else { path }
        )));
    };
    if let Some(unknown) = map.keys().find(|k| !fields.iter().any(|f| f.name == k.as_str())) {
        return Err(ApiError::new(
            "UnknownParameter",
            format!("The parameter `{}` is not recognized.", join(path, unknown)),
        ));
    }
    let mut out = Map::new();
    for f in fields {
        let p = join(path, f.name);
        match map.remove(f.name) {
            None | Some(Value::Null) => {
                if f.required {
                    return Err(ApiError::new(
                        "MissingParameter",
                        format!("The request is missing a required parameter `{p}`."),
                    ));
                }
            }
            Some(v) => {
                out.insert(f.name.to_string(), check_value(v, &f.ty, &p, from_strings)?);
            }
        }
    }
    Ok(Value::Object(out))
}

fn check_value(value: Value, ty: &'static Ty, path: &str, from_strings: bool) -> Result<Value, ApiError> {
    match (ty, value) {
        (Ty::Str, Value::String(s)) => Ok(Value::String(s)),
        (Ty::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(Value::Number(n)),
        (Ty::Int, Value::String(s)) if from_strings => match s.trim().parse::<i64>() {
            Ok(i) => Ok(Value::from(i)),
            Err(_) => Err(wrong_type(path, ty)),
        },
        (Ty::Bool, Value::Bool(b)) => Ok(Value::Bool(b)),
        (Ty::Bool, Value::String(s)) if from_strings => match s.as_str() {
            "True" | "true" | "1" => Ok(Value::Bool(true)),
            "False" | "false" | "0" => Ok(Value::Bool(false)),
            _ => Err(wrong_type(path, ty)),
        },
        (Ty::Obj(fields), v @ Value::Object(_)) => check_object(v, fields, path, from_strings),
        (Ty::Arr(elem), Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| check_value(v, elem, &format!("{path}.{i}"), from_strings))
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        (Ty::Arr(elem), Value::Object(map)) if from_strings => {
            let mut indexed: Vec<(usize, Value)> = Vec::with_capacity(map.len());
            for (k, v) in map {
                let i: usize = k.parse().map_err(|_| {
                    ApiError::invalid_parameter(format!("The parameter `{path}.{k}` should be a 0-based list index."))
                })?;
                indexed.push((i, v));
            }
            indexed.sort_by_key(|(i, _)| *i);
            if indexed.iter().enumerate().any(|(pos, (i, _))| pos != *i) {
                return Err(ApiError::invalid_parameter(format!(
                    "The list `{path}` must be numbered 0, 1, 2, ... without gaps."
                )));
            }
            indexed
                .into_iter()
                .map(|(i, v)| check_value(v, elem, &format!("{path}.{i}"), from_strings))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
        (ty, _) => Err(wrong_type(path, ty)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static TAG_FILTER: [Field; 2] = [
        Field { name: "TagKey", ty: Ty::Str, required: true },
        Field { name: "TagValue", ty: Ty::Arr(&Ty::Str), required: false },
    ];
    static OPTION: [Field; 1] = [Field { name: "RunMode", ty: Ty::Int, required: true }];
    static REQ: [Field; 4] = [
        Field { name: "JobName", ty: Ty::Str, required: false },
        Field { name: "Limit", ty: Ty::Int, required: false },
        Field { name: "TagFilters", ty: Ty::Arr(&Ty::Obj(&TAG_FILTER)), required: false },
        Field { name: "MigrateOption", ty: Ty::Obj(&OPTION), required: false },
    ];

    fn pairs(raw: &str) -> Vec<(String, String)> {
        form_urlencoded::parse(raw.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
    }

    #[test]
    fn flattened_get_parameters_become_the_same_tree_as_the_json_body() {
        let tree = unflatten(&pairs(
            "JobName=a+b&Limit=2&TagFilters.0.TagKey=k&TagFilters.0.TagValue.0=v1&TagFilters.0.TagValue.1=v2",
        ))
        .unwrap();
        let from_get = validate(tree, &REQ, true).unwrap();
        let from_json = validate(
            json!({"JobName": "a b", "Limit": 2, "TagFilters": [{"TagKey": "k", "TagValue": ["v1", "v2"]}]}),
            &REQ,
            false,
        )
        .unwrap();
        assert_eq!(from_get, from_json);
    }

    #[test]
    fn mistakes_get_the_documented_codes_and_name_the_field() {
        let err = validate(json!({"Limit": "2"}), &REQ, false).unwrap_err();
        assert_eq!((err.code.as_str(), err.message.contains("`Limit`")), ("InvalidParameter", true));
        let err = validate(json!({"Bogus": 1}), &REQ, false).unwrap_err();
        assert_eq!(err.code, "UnknownParameter");
        let err = validate(json!({"MigrateOption": {}}), &REQ, false).unwrap_err();
        assert_eq!(err.code, "MissingParameter");
        assert!(err.message.contains("MigrateOption.RunMode"));
        let err = validate(json!({"TagFilters": [{"TagKey": 5}]}), &REQ, false).unwrap_err();
        assert!(err.message.contains("TagFilters.0.TagKey"));
        let err = validate(unflatten(&pairs("TagFilters.1.TagKey=k")).unwrap(), &REQ, true).unwrap_err();
        assert_eq!(err.code, "InvalidParameter");
        assert!(unflatten(&pairs("A=1&A.B=2")).is_err());
        assert!(unflatten(&pairs("A..B=2")).is_err());
    }

    #[test]
    fn deep_long_and_numerous_names_are_refused_naming_the_limit() {
        let eight = ["A"; crate::limits::MAX_DEPTH].join(".");
        assert!(unflatten(&[(eight.clone(), "v".into())]).is_ok());
        let err = unflatten(&[(format!("{eight}.A"), "v".into())]).unwrap_err();
        assert_eq!(err.code, "InvalidParameter");
        assert!(err.message.contains("deeper than 8 levels"), "{}", err.message);
        let huge = vec!["a"; 200_000].join(".");
        let err = unflatten(&[(huge, "v".into())]).unwrap_err();
        assert!(err.message.contains("longer than 256 bytes"), "{}", err.message);
        let many: Vec<(String, String)> = (0..1001).map(|i| (format!("P{i}"), String::new())).collect();
        assert!(unflatten(&many).unwrap_err().message.contains("more than 1000 parameters"));
    }
}
