//! The `gateway` and `volume` configurations.

use serde::ser::SerializeStruct;
use serde::{Serialize, Serializer};

use super::decode::{self, Cx, D, fields};
use super::node::Node;
use super::profile::BackendType;
use super::resources;
use super::values::{self, Tags};
use crate::resources::Memory;

/// The TLS certificate of a gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Certificate {
    /// Issued by Let's Encrypt.
    LetsEncrypt,
    /// An AWS Certificate Manager certificate.
    Acm {
        /// The certificate ARN.
        arn: String,
    },
}

impl Serialize for Certificate {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Certificate::LetsEncrypt => {
                let mut st = s.serialize_struct("LetsEncryptGatewayCertificate", 1)?;
                st.serialize_field("type", "lets-encrypt")?;
                st.end()
            }
            Certificate::Acm { arn } => {
                let mut st = s.serialize_struct("ACMGatewayCertificate", 2)?;
                st.serialize_field("type", "acm")?;
                st.serialize_field("arn", arn)?;
                st.end()
            }
        }
    }
}

fn certificate(cx: &mut Cx, n: &Node) -> D<Certificate> {
    match n.get("type").and_then(Node::as_str) {
        Some("acm") => {
            let (ok, f) = fields!(cx, n, ["type"], { arn });
            let arn = decode::req(cx, n, "arn", f.arn, decode::string);
            ok?;
            Ok(Certificate::Acm { arn: arn? })
        }
        Some("lets-encrypt") | None if n.as_map().is_some() => {
            let (ok, _f) = fields!(cx, n, ["type"], {});
            ok?;
            Ok(Certificate::LetsEncrypt)
        }
        _ => Err(cx.error(
            n,
            "expected `{type: lets-encrypt}` or `{type: acm, arn: ...}`",
        )),
    }
}

/// A `gateway` configuration.
#[derive(Debug, Clone, PartialEq, schemars::JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct GatewayConfiguration {
    /// Gateway name.
    pub name: Option<String>,
    /// Make it the project's default gateway (`None` = if there is none yet).
    pub default: Option<bool>,
    /// Backend to create it in.
    #[schemars(with = "crate::config::schema::BackendInput")]
    pub backend: BackendType,
    /// Region to create it in.
    pub region: String,
    /// Instance type.
    pub instance_type: Option<String>,
    /// Wildcard domain for services (may use `${{ run.project_name }}`).
    pub domain: Option<String>,
    /// Whether it gets a public IP.
    #[schemars(with = "Option<bool>")]
    pub public_ip: bool,
    /// TLS certificate; `None` disables HTTPS.
    #[schemars(with = "Option<crate::config::schema::CertificateInput>")]
    pub certificate: Option<Certificate>,
    /// Number of gateway replicas.
    pub replicas: Option<i64>,
    /// Resource tags.
    #[schemars(with = "Option<crate::config::schema::TagsInput>")]
    pub tags: Option<Tags>,
}

impl Serialize for GatewayConfiguration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("GatewayConfiguration", 11)?;
        st.serialize_field("type", "gateway")?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("default", &self.default)?;
        st.serialize_field("backend", &self.backend)?;
        st.serialize_field("region", &self.region)?;
        st.serialize_field("instance_type", &self.instance_type)?;
        st.serialize_field("domain", &self.domain)?;
        st.serialize_field("public_ip", &self.public_ip)?;
        st.serialize_field("certificate", &self.certificate)?;
        st.serialize_field("replicas", &self.replicas)?;
        st.serialize_field("tags", &self.tags)?;
        st.end()
    }
}

fn backend(cx: &mut Cx, n: &Node) -> D<BackendType> {
    let s = decode::string(cx, n)?;
    BackendType::parse(&s)
        .ok_or_else(|| cx.error(n, format!("Input should be a backend type, got `{s}`")))
}

impl GatewayConfiguration {
    /// Decodes a `type: gateway` mapping.
    pub fn decode(cx: &mut Cx, n: &Node) -> D<GatewayConfiguration> {
        let (ok, f) = fields!(cx, n, ["type"], {
            name, default, backend, region, instance_type, domain, public_ip, certificate, replicas, tags,
        });
        let name = decode::opt(cx, "name", f.name, decode::string);
        let default = decode::opt(cx, "default", f.default, decode::boolean);
        let backend = decode::req(cx, n, "backend", f.backend, backend);
        let region = decode::req(cx, n, "region", f.region, decode::string);
        let instance_type = decode::opt(
            cx,
            "instance_type",
            f.instance_type,
            decode::nonempty_string,
        );
        let domain = decode::opt(cx, "domain", f.domain, decode::string);
        let public_ip = decode::def(cx, "public_ip", f.public_ip, || true, decode::boolean);
        let certificate = match f.certificate {
            None => Ok(Some(Certificate::LetsEncrypt)),
            Some(_) => decode::opt(cx, "certificate", f.certificate, certificate),
        };
        let replicas = decode::opt(cx, "replicas", f.replicas, |cx, n| {
            decode::integer_in(cx, n, Some(1), None)
        });
        let tags = decode::opt(cx, "tags", f.tags, values::tags);
        ok?;
        Ok(GatewayConfiguration {
            name: name?,
            default: default?,
            backend: backend?,
            region: region?,
            instance_type: instance_type?,
            domain: domain?,
            public_ip: public_ip?,
            certificate: certificate?,
            replicas: replicas?,
            tags: tags?,
        })
    }
}

/// Backend-specific parts of a volume.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VolumeBackend {
    /// AWS EBS.
    Aws {
        /// Register an existing volume.
        volume_id: Option<String>,
        /// Region.
        region: String,
        /// Availability zone.
        availability_zone: Option<String>,
    },
    /// GCP persistent disk.
    Gcp {
        /// Register an existing volume.
        volume_id: Option<String>,
        /// Region.
        region: String,
        /// Availability zone.
        availability_zone: Option<String>,
    },
    /// RunPod network volume.
    Runpod {
        /// Register an existing volume.
        volume_id: Option<String>,
        /// Region.
        region: String,
    },
    /// Kubernetes persistent volume claim.
    Kubernetes {
        /// Region (cluster context).
        region: String,
        /// Use an existing claim.
        claim_name: Option<String>,
        /// Storage class of a new claim.
        storage_class_name: Option<String>,
        /// Access modes.
        access_modes: Vec<String>,
        /// Mount read-only.
        read_only: bool,
    },
}

/// A `volume` configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct VolumeConfiguration {
    /// Volume name.
    pub name: Option<String>,
    /// Size in GB.
    pub size: Option<Memory>,
    /// Delete after this long unused (-1 = never).
    pub auto_cleanup_duration: Option<i64>,
    /// Resource tags.
    pub tags: Option<Tags>,
    /// Backend and its parameters.
    pub backend: VolumeBackend,
}

impl Serialize for VolumeConfiguration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("VolumeConfiguration", 11)?;
        st.serialize_field("type", "volume")?;
        let backend = match &self.backend {
            VolumeBackend::Aws { .. } => "aws",
            VolumeBackend::Gcp { .. } => "gcp",
            VolumeBackend::Runpod { .. } => "runpod",
            VolumeBackend::Kubernetes { .. } => "kubernetes",
        };
        st.serialize_field("backend", backend)?;
        st.serialize_field("name", &self.name)?;
        st.serialize_field("auto_cleanup_duration", &self.auto_cleanup_duration)?;
        st.serialize_field("tags", &self.tags)?;
        st.serialize_field("size", &self.size)?;
        match &self.backend {
            VolumeBackend::Aws {
                volume_id,
                region,
                availability_zone,
            }
            | VolumeBackend::Gcp {
                volume_id,
                region,
                availability_zone,
            } => {
                st.serialize_field("volume_id", volume_id)?;
                st.serialize_field("region", region)?;
                st.serialize_field("availability_zone", availability_zone)?;
            }
            VolumeBackend::Runpod { volume_id, region } => {
                st.serialize_field("volume_id", volume_id)?;
                st.serialize_field("region", region)?;
            }
            VolumeBackend::Kubernetes {
                region,
                claim_name,
                storage_class_name,
                access_modes,
                read_only,
            } => {
                st.serialize_field("region", region)?;
                st.serialize_field("claim_name", claim_name)?;
                st.serialize_field("storage_class_name", storage_class_name)?;
                st.serialize_field("access_modes", access_modes)?;
                st.serialize_field("read_only", read_only)?;
            }
        }
        st.end()
    }
}

impl VolumeConfiguration {
    /// Decodes a `type: volume` mapping, dispatching on `backend`.
    pub fn decode(cx: &mut Cx, n: &Node) -> D<VolumeConfiguration> {
        let backend = match n.get("backend") {
            None => {
                return cx.at("backend", |cx| {
                    Err(cx.error(n, "Field required: `backend` is missing"))
                });
            }
            Some(b) => b,
        };
        match backend.as_str() {
            Some(kind @ ("aws" | "gcp" | "runpod")) => {
                let (ok, f) = fields!(cx, n, ["type", "backend"], {
                    name, size, auto_cleanup_duration, tags, volume_id, region, availability_zone,
                });
                let (name, size, cleanup, tags) = Self::common(cx, f.name, f.size, f.auto_cleanup_duration, f.tags);
                let volume_id = decode::opt(cx, "volume_id", f.volume_id, decode::string);
                let region = decode::req(cx, n, "region", f.region, decode::string);
                let zone = decode::opt(cx, "availability_zone", f.availability_zone, decode::string);
                ok?;
                let (volume_id, region, availability_zone) = (volume_id?, region?, zone?);
                let backend = match kind {
                    "aws" => VolumeBackend::Aws {
                        volume_id,
                        region,
                        availability_zone,
                    },
                    "gcp" => VolumeBackend::Gcp {
                        volume_id,
                        region,
                        availability_zone,
                    },
                    _ => VolumeBackend::Runpod { volume_id, region },
                };
                Ok(VolumeConfiguration {
                    name: name?,
                    size: size?,
                    auto_cleanup_duration: cleanup?.flatten(),
                    tags: tags?,
                    backend,
                })
            }
            Some("kubernetes") => {
                let (ok, f) = fields!(cx, n, ["type", "backend"], {
                    name, size, auto_cleanup_duration, tags, region, claim_name, storage_class_name,
                    access_modes, read_only,
                });
                let (name, size, cleanup, tags) = Self::common(cx, f.name, f.size, f.auto_cleanup_duration, f.tags);
                let region = decode::def(cx, "region", f.region, String::new, decode::string);
                let claim_name = decode::opt(cx, "claim_name", f.claim_name, decode::string);
                let class = decode::opt(cx, "storage_class_name", f.storage_class_name, decode::string);
                let modes = decode::def(
                    cx,
                    "access_modes",
                    f.access_modes,
                    || vec!["ReadWriteOnce".to_string()],
                    decode::string_list,
                );
                let read_only = decode::def(cx, "read_only", f.read_only, || false, decode::boolean);
                ok?;
                Ok(VolumeConfiguration {
                    name: name?,
                    size: size?,
                    auto_cleanup_duration: cleanup?.flatten(),
                    tags: tags?,
                    backend: VolumeBackend::Kubernetes {
                        region: region?,
                        claim_name: claim_name?,
                        storage_class_name: class?,
                        access_modes: modes?,
                        read_only: read_only?,
                    },
                })
            }
            _ => Err(cx.at("backend", |cx| {
                cx.error(
                    backend,
                    format!(
                        "Input tag '{backend}' found using 'backend' does not match any of the expected tags: 'aws', 'gcp', 'runpod', 'kubernetes'"
                    ),
                )
            })),
        }
    }

    #[allow(clippy::type_complexity)]
    fn common(
        cx: &mut Cx,
        name: Option<&Node>,
        size: Option<&Node>,
        cleanup: Option<&Node>,
        tags: Option<&Node>,
    ) -> (
        D<Option<String>>,
        D<Option<Memory>>,
        D<Option<Option<i64>>>,
        D<Option<Tags>>,
    ) {
        (
            decode::opt(cx, "name", name, decode::string),
            decode::opt(cx, "size", size, resources::memory),
            decode::opt(cx, "auto_cleanup_duration", cleanup, values::idle_duration),
            decode::opt(cx, "tags", tags, values::tags),
        )
    }
}
