# The journal: Firestore (database {{database}}, Native mode, in {{region}}), shared by every instance, so the service
# scales to zero and a replaced instance loses nothing. Rows, their dedup keys, pieces and alerts expire {{days}} days
# after they are written, a stopped replica's heartbeat a day after (a TTL policy on expireAt).
gcloud firestore databases describe --database "{{database}}" --project "$PROJECT" >/dev/null 2>&1 ||
  gcloud firestore databases create --database "{{database}}" --location "$REGION" --type firestore-native \
    --project "$PROJECT"
gcloud projects add-iam-policy-binding "$PROJECT" --member "serviceAccount:$SA" \
  --role roles/datastore.user --condition None >/dev/null
for group in {{collections}}; do
  gcloud firestore fields ttls update expireAt --collection-group "$group" --enable-ttl \
    --database "{{database}}" --project "$PROJECT" --async --quiet
done
