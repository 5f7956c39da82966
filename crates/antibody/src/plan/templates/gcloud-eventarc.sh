gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/eventarc.eventReceiver --condition None >/dev/null

# One trigger per (serviceName, methodName): Eventarc matches method names exactly.
