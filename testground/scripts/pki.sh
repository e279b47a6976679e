# Certificate helpers for the local cluster (sourced). Everything is signed by a throwaway CA
# made per cluster-up; keys are ECDSA P-256 because they are quick to make.

new_ca() { # new_ca <name> <common name>
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/$1.key" 2>/dev/null
  openssl req -x509 -new -key "$PKI_DIR/$1.key" -days 3650 -subj "/CN=$2" \
    -out "$PKI_DIR/$1.crt" 2>/dev/null
}

new_cert() { # new_cert <ca> <name> <subject> <extendedKeyUsage> [subjectAltName]
  local ca="$1" name="$2" subject="$3" usage="$4" san="${5:-}" ext="$PKI_DIR/$2.ext"
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI_DIR/$name.key" 2>/dev/null
  openssl req -new -key "$PKI_DIR/$name.key" -subj "$subject" -out "$PKI_DIR/$name.csr" 2>/dev/null
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$usage"
    [[ -n "$san" ]] && echo "subjectAltName=$san"
  } > "$ext"
  openssl x509 -req -in "$PKI_DIR/$name.csr" -CA "$PKI_DIR/$ca.crt" -CAkey "$PKI_DIR/$ca.key" \
    -CAcreateserial -days 3650 -extfile "$ext" -out "$PKI_DIR/$name.crt" 2>/dev/null
  rm -f "$PKI_DIR/$name.csr" "$ext"
}

write_kubeconfig() { # write_kubeconfig <client cert name> <path>
  local name="$1" path="$2"
  cat > "$path" <<KUBECONFIG
apiVersion: v1
kind: Config
clusters:
- name: spot-testground
  cluster:
    server: https://127.0.0.1:$PORT_APISERVER
    certificate-authority-data: $(base64 -w0 < "$PKI_DIR/ca.crt")
users:
- name: $name
  user:
    client-certificate-data: $(base64 -w0 < "$PKI_DIR/$name.crt")
    client-key-data: $(base64 -w0 < "$PKI_DIR/$name.key")
contexts:
- name: spot-testground
  context:
    cluster: spot-testground
    user: $name
current-context: spot-testground
KUBECONFIG
  chmod 600 "$path"
}

make_pki() {
  mkdir -p "$PKI_DIR"
  new_ca ca spot-testground-ca
  new_cert ca apiserver "/CN=kube-apiserver" serverAuth \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:10.96.0.1"
  new_cert ca admin "/O=system:masters/CN=kubernetes-admin" clientAuth
  new_cert ca controller-manager "/CN=system:kube-controller-manager" clientAuth
  new_cert ca scheduler "/CN=system:kube-scheduler" clientAuth
  # KWOK plays every kubelet and the Fargate simulator plays EKS itself: both act as the platform.
  new_cert ca kwok "/O=system:masters/CN=kwok-controller" clientAuth
  new_cert ca fargate "/O=system:masters/CN=eks-fargate-simulator" clientAuth
  openssl genrsa -out "$PKI_DIR/sa.key" 2048 2>/dev/null
  openssl rsa -in "$PKI_DIR/sa.key" -pubout -out "$PKI_DIR/sa.pub" 2>/dev/null
  # The admission webhook has a CA of its own, as an EKS webhook's would be.
  new_ca webhook-ca fargate-webhook-ca
  new_cert webhook-ca webhook "/CN=fargate-webhook" serverAuth "IP:127.0.0.1,DNS:localhost"
  for who in admin controller-manager scheduler kwok fargate; do
    write_kubeconfig "$who" "$PKI_DIR/$who.kubeconfig"
  done
  cp "$PKI_DIR/admin.kubeconfig" "$ADMIN_KUBECONFIG"
}
