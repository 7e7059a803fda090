# Optional GPU node pool for the Dask `stf-gpu` worker group (infra/k8s/daskcluster.yaml).
# It scales from zero; the taint keeps CPU pods off, the label is the group's nodeSelector.

resource "google_container_node_pool" "gpu" {
  count    = var.enable_gpu_pool ? 1 : 0
  name     = "stf-gpu"
  cluster  = var.gke_cluster_name
  location = var.region

  autoscaling {
    total_min_node_count = 0
    total_max_node_count = var.gpu_max_nodes
  }

  management {
    auto_repair  = true
    auto_upgrade = true
  }

  node_config {
    machine_type    = var.gpu_machine_type
    spot            = var.gpu_spot
    service_account = google_service_account.runner.email
    oauth_scopes    = ["https://www.googleapis.com/auth/cloud-platform"]

    guest_accelerator {
      type  = var.gpu_type
      count = 1
      gpu_driver_installation_config {
        gpu_driver_version = "LATEST"
      }
    }

    labels = {
      "stf.dev/pool" = "gpu"
    }

    taint {
      key    = "nvidia.com/gpu"
      value  = "present"
      effect = "NO_SCHEDULE"
    }

    workload_metadata_config {
      mode = "GKE_METADATA"
    }
  }

  lifecycle {
    precondition {
      condition     = var.gke_cluster_name != ""
      error_message = "enable_gpu_pool needs gke_cluster_name (an existing GKE cluster)."
    }
  }
}
