//! The settings of a Tencent 2018-03-30 subscription: `ModifySubscribeName` (1..60 characters,
//! also the job's name), `ModifySubscribeConsumeTime` (the default consumer group, named like
//! the subscription, rewound to the first event at or after a time inside the bus's retained
//! window), `ModifySubscribeAutoRenewFlag` (0 or 1, shown as `AutoRenewFlag`) and
//! `ModifySubscribeVipVport` (an IP address and a port in 1025..65535, shown as `Vip`/`Vport`;
//! consumers still read from the bus, whose address `SdkHost` shows).

use std::net::IpAddr;

use chrono::NaiveDateTime;
use dts_core::JobStatus;
use dts_store::now_string;
use serde_json::{Value, json};

use super::actions::Caller;
use super::error::ApiError;
use super::params::{Field, Ty};
use super::subscribe::{load, save_info, store_error, str_of};
use crate::subscription::plain_ms;

const fn req(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: true }
}

const fn opt(name: &'static str, ty: Ty) -> Field {
    Field { name, ty, required: false }
}

pub static MODIFY_SUBSCRIBE_NAME: [Field; 2] = [req("SubscribeId", Ty::Str), req("SubscribeName", Ty::Str)];
pub static MODIFY_SUBSCRIBE_CONSUME_TIME: [Field; 2] = [req("SubscribeId", Ty::Str), req("ConsumeStartTime", Ty::Str)];
pub static MODIFY_SUBSCRIBE_AUTO_RENEW_FLAG: [Field; 2] = [req("SubscribeId", Ty::Str), req("AutoRenewFlag", Ty::Int)];
pub static MODIFY_SUBSCRIBE_VIP_VPORT: [Field; 4] =
    [req("SubscribeId", Ty::Str), opt("DstUniqSubnetId", Ty::Str), opt("DstIp", Ty::Str), opt("DstPort", Ty::Int)];

/// Changes the subscription's stored settings.
fn set_info(caller: &Caller<'_>, sub: &str, change: impl FnOnce(&mut Value)) -> Result<(), ApiError> {
    let (inst, _) = load(caller, sub)?;
    let mut info = inst.info.clone();
    change(&mut info);
    info["ModifyTime"] = json!(now_string());
    save_info(caller, &inst, &info)
}

pub fn modify_subscribe_name(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let name = p["SubscribeName"].as_str().unwrap_or_default().to_string();
    if name.is_empty() || name.chars().count() > 60 {
        return Err(ApiError::invalid_value("SubscribeName", "it must be 1 to 60 characters"));
    }
    let (inst, job) = load(caller, sub)?;
    if let Some(job) = job {
        let renamed = name.clone();
        crate::update_account_job(&caller.ctx.store, caller.account_id, &job.job_id, |j| {
            j.spec.name = renamed;
            Ok::<(), ApiError>(())
        })
        .map_err(|e| e.unwrap_or_else(|e| store_error(e, sub)))?;
    }
    set_info(caller, &inst.instance_id, |i| i["Name"] = json!(name))?;
    Ok(json!({}))
}

/// Rewinds the subscription's default consumer group. The time must lie inside the retained
/// window (from the oldest retained event's second up to now); a running reader of the group
/// keeps its old position until it reconnects (Kafka refuses the rewind while one is joined).
pub fn modify_subscribe_consume_time(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let raw = p["ConsumeStartTime"].as_str().unwrap_or_default().to_string();
    let at = NaiveDateTime::parse_from_str(&raw, "%Y-%m-%d %H:%M:%S")
        .map_err(|_| ApiError::invalid_value("ConsumeStartTime", "expected `Y-m-d h:m:s`"))?;
    let t_ms = at.and_utc().timestamp_millis();
    let (inst, job) = load(caller, sub)?;
    let Some(job) = job.filter(|j| j.status != JobStatus::Creating) else {
        return Err(ApiError::status_conflict(format!("The subscription `{sub}` is not activated.")));
    };
    let unavailable = || ApiError::new("FailedOperation", "The change bus did not answer in time; try again.");
    let bus = caller.ctx.change_bus.as_ref().ok_or_else(unavailable)?;
    let window = bus.retained(&job.job_id).ok_or_else(unavailable)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let Some(first_ms) = window.first_ts_ms.map(|ms| ms.div_euclid(1000) * 1000) else {
        return Err(ApiError::new(
            "InvalidParameter",
            format!("The subscription `{sub}` retains no events yet; there is no time to consume from."),
        ));
    };
    if t_ms < first_ms || t_ms > now_ms {
        return Err(ApiError::new(
            "InvalidParameter",
            format!(
                "The ConsumeStartTime `{raw}` is outside the retained window, {} to {} (UTC).",
                plain_ms(first_ms),
                plain_ms(now_ms)
            ),
        ));
    }
    if !bus.rewind_group(&job.job_id, &inst.instance_id, t_ms) {
        return Err(ApiError::new(
            "FailedOperation",
            "The change bus did not rewind the consumer group; stop its readers and try again.",
        ));
    }
    set_info(caller, sub, |i| i["ConsumeStartTime"] = json!(raw))?;
    tracing::info!(subscribe_id = sub, consume_start_time = %raw, "default consumer group rewound");
    Ok(json!({}))
}

pub fn modify_subscribe_auto_renew_flag(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let flag = p["AutoRenewFlag"].as_i64().unwrap_or(-1);
    if ![0, 1].contains(&flag) {
        return Err(ApiError::invalid_value("AutoRenewFlag", format!("{flag} is not 0 or 1")));
    }
    set_info(caller, sub, |i| i["AutoRenew"] = json!(flag))?;
    Ok(json!({}))
}

pub fn modify_subscribe_vip_vport(caller: &Caller<'_>, p: &Value) -> Result<Value, ApiError> {
    let sub = str_of(p, "SubscribeId").unwrap_or_default();
    let ip = str_of(p, "DstIp");
    let port = p["DstPort"].as_i64();
    if ip.is_none() && port.is_none() {
        return Err(ApiError::new("MissingParameter", "The request needs `DstIp`, `DstPort` or both."));
    }
    if let Some(ip) = ip
        && ip.parse::<IpAddr>().is_err()
    {
        return Err(ApiError::new(
            "InvalidParameter.InvalidIpAddress",
            format!("The value of `DstIp` is invalid: `{ip}` is not an IP address."),
        ));
    }
    if let Some(port) = port
        && !(1025..=65535).contains(&port)
    {
        return Err(ApiError::invalid_value("DstPort", format!("{port} is not within 1025..65535")));
    }
    let subnet = str_of(p, "DstUniqSubnetId");
    set_info(caller, sub, |i| {
        if let Some(ip) = ip {
            i["Vip"] = json!(ip);
        }
        if let Some(port) = port {
            i["Vport"] = json!(port);
        }
        if let Some(subnet) = subnet {
            i["UniqSubnetId"] = json!(subnet);
        }
    })?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_requires_the_subscription_id() {
        for schema in [
            &MODIFY_SUBSCRIBE_NAME[..],
            &MODIFY_SUBSCRIBE_CONSUME_TIME[..],
            &MODIFY_SUBSCRIBE_AUTO_RENEW_FLAG[..],
            &MODIFY_SUBSCRIBE_VIP_VPORT[..],
        ] {
            assert!(schema.iter().any(|f| f.name == "SubscribeId" && f.required));
        }
    }
}
