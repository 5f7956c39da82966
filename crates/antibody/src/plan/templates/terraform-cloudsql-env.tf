
      env {
        name = "ANTIBODY_STATE"
        value_source {
          secret_key_ref {
            secret  = "{{STATE_SECRET}}"
            version = "latest"
          }
        }
      }