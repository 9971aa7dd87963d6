// Play an exported GLB's animation in three.js and report morph target influences (see play.html).
import * as THREE from 'three';
import { GLTFLoader } from 'three/addons/loaders/GLTFLoader.js';

const params = new URLSearchParams(location.search);
const report = async (payload) => {
  document.getElementById('out').textContent = JSON.stringify(payload);
  await fetch(params.get('report') || '/result', { method: 'POST', body: JSON.stringify(payload) });
};

try {
  const gltf = await new GLTFLoader().loadAsync(params.get('glb'));
  const times = (params.get('times') || '').split(',').filter((s) => s !== '').map(Number);
  const clipName = params.get('clip');
  const clip = clipName ? THREE.AnimationClip.findByName(gltf.animations, clipName) : gltf.animations[0];
  if (!clip) throw new Error(`no animation ${clipName || ''} in ${gltf.animations.map((a) => a.name)}`);
  const meshes = [];
  gltf.scene.traverse((o) => { if (o.isMesh && o.morphTargetInfluences) meshes.push(o); });
  if (!meshes.length) throw new Error('no mesh with morph targets');

  const mixer = new THREE.AnimationMixer(gltf.scene);
  const action = mixer.clipAction(clip);
  action.setLoop(THREE.LoopOnce, 1);
  action.clampWhenFinished = true;
  action.play();

  let rendered = false;
  let renderer = null;
  try {  // a real draw call where WebGL exists (SwiftShader under --disable-gpu); sampling does not need it
    renderer = new THREE.WebGLRenderer({ antialias: false });
    renderer.setSize(64, 64);
  } catch (e) { renderer = null; }
  const camera = new THREE.PerspectiveCamera(30, 1, 0.01, 100);
  camera.position.set(0, 0, 5);
  const scene = new THREE.Scene();
  scene.add(gltf.scene);

  const samples = [];
  for (const t of times) {
    mixer.setTime(t);
    if (renderer) { renderer.render(scene, camera); rendered = true; }
    const weights = {};
    for (const mesh of meshes) {
      for (const [name, index] of Object.entries(mesh.morphTargetDictionary)) {
        weights[name] = mesh.morphTargetInfluences[index];
      }
    }
    samples.push({ t, weights });
  }
  await report({
    ok: true, three: THREE.REVISION, clip: clip.name, duration: clip.duration,
    animations: gltf.animations.map((a) => a.name), meshes: meshes.map((m) => m.name),
    targets: Object.keys(meshes[0].morphTargetDictionary), rendered, samples,
  });
} catch (err) {
  await report({ ok: false, error: String(err && err.stack || err) });
}
