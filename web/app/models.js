// The models the page offers and the test images that go with each (paths relative to the page).
// Class names come from each model file's graph; `draw` says whether the drawing pad makes sense
// (hand-drawn digits do; hand-drawn clothes are not what Fashion-MNIST was photographed from).
// `fit` is how a dropped image file becomes the model input (runImage's option).
export const MODELS = {
  mnist: {
    name: 'MNIST digits',
    url: 'models/mnist.anybit',
    samples: { images: 'fixtures/mnist-t100-images.idx3', labels: 'fixtures/mnist-t100-labels.idx1' },
    draw: true,
    fit: 'mnist',
  },
  fashion: {
    name: 'Fashion-MNIST clothes',
    url: 'models/fashion-mnist.anybit',
    samples: { images: 'fixtures/fmnist-t100-images.idx3', labels: 'fixtures/fmnist-t100-labels.idx1' },
    draw: false,
    fit: 'stretch',
  },
};

export const DEFAULT_MODEL = 'mnist';
