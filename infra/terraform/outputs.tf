output "bucket_name" {
  description = "Bucket holding the stores."
  value       = google_storage_bucket.stores.name
}

output "store_root_url" {
  description = "Prefix for store.path in flows/regions/*.yaml (gs:// URL, opened through fsspec/gcsfs)."
  value       = "gs://${google_storage_bucket.stores.name}/stores"
}

output "runner_service_account_email" {
  description = "Annotate the stf-runner Kubernetes service account with this (infra/k8s/rbac.yaml)."
  value       = google_service_account.runner.email
}

output "gpu_node_pool" {
  description = "Name of the GPU node pool, or null when enable_gpu_pool is false."
  value       = one(google_container_node_pool.gpu[*].name)
}
