
    volumes {
      name = "cloudsql"
      cloud_sql_instance {
        instances = ["{{instance}}"]
      }
    }