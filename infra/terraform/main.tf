# Object storage for the fused Zarr stores, trained models and feeds (one bucket,
# prefixes per region), and the identity the Dask/Prefect pods use to write it.

resource "google_storage_bucket" "stores" {
  name                        = var.bucket_name
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  # Stores are rebuilt from STAC; refusing `terraform destroy` of a full bucket is still safer.
  force_destroy = false

  # Region writes overwrite chunks in place: versions make a bad run recoverable.
  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = var.noncurrent_version_days
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age            = var.scratch_days
      matches_prefix = [var.scratch_prefix]
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      age                   = var.archive_after_days
      matches_storage_class = ["STANDARD"]
    }
    action {
      type          = "SetStorageClass"
      storage_class = "NEARLINE"
    }
  }

  lifecycle_rule {
    condition {
      age = 1
    }
    action {
      type = "AbortIncompleteMultipartUpload"
    }
  }
}

resource "google_service_account" "runner" {
  account_id   = "stf-runner"
  display_name = "stf Dask workers and Prefect flow runs"
}

resource "google_storage_bucket_iam_member" "runner_rw" {
  bucket = google_storage_bucket.stores.name
  role   = "roles/storage.objectUser"
  member = "serviceAccount:${google_service_account.runner.email}"
}

# Workload Identity: the Kubernetes service account stf-runner acts as the Google one.
resource "google_service_account_iam_member" "runner_workload_identity" {
  count              = var.gke_cluster_name == "" ? 0 : 1
  service_account_id = google_service_account.runner.name
  role               = "roles/iam.workloadIdentityUser"
  member             = "serviceAccount:${var.project_id}.svc.id.goog[${var.runner_k8s_namespace}/stf-runner]"
}
