variable "project_id" {
  description = "Google Cloud project that holds the bucket (and the GKE cluster for the GPU pool)."
  type        = string
}

variable "region" {
  description = "Region of the bucket and of the GKE cluster; keep storage and compute together to avoid egress."
  type        = string
  default     = "europe-west4"
}

variable "bucket_name" {
  description = "Globally unique name of the bucket holding the fused Zarr stores, models and feeds."
  type        = string
}

variable "noncurrent_version_days" {
  description = "Days a superseded object version (an overwritten Zarr chunk) is kept before deletion."
  type        = number
  default     = 14
}

variable "scratch_prefix" {
  description = "Object prefix for intermediate data (cubes, caches) that expires after scratch_days."
  type        = string
  default     = "scratch/"
}

variable "scratch_days" {
  description = "Age in days after which objects under scratch_prefix are deleted."
  type        = number
  default     = 7
}

variable "archive_after_days" {
  description = "Age in days after which store objects move to the Nearline class (cheaper, read fee)."
  type        = number
  default     = 90
}

variable "runner_k8s_namespace" {
  description = "Kubernetes namespace of the stf-runner service account (Workload Identity binding)."
  type        = string
  default     = "stf"
}

variable "enable_gpu_pool" {
  description = "Create a GPU node pool in an existing GKE cluster (gke_cluster_name)."
  type        = bool
  default     = false
}

variable "gke_cluster_name" {
  description = "Name of the existing GKE cluster (with Workload Identity) that gets the GPU pool."
  type        = string
  default     = ""
}

variable "gpu_machine_type" {
  description = "Machine type of GPU nodes (g2-standard-8 carries one NVIDIA L4)."
  type        = string
  default     = "g2-standard-8"
}

variable "gpu_type" {
  description = "Accelerator type attached to each GPU node."
  type        = string
  default     = "nvidia-l4"
}

variable "gpu_max_nodes" {
  description = "Upper bound of the GPU pool's autoscaler (the pool scales to zero when idle)."
  type        = number
  default     = 4
}

variable "gpu_spot" {
  description = "Use Spot VMs for GPU nodes (about a third of the price; Dask reschedules lost tasks)."
  type        = bool
  default     = true
}
