// The models the page offers and the test images that go with each (paths relative to the page).
export const MODELS = {
  mnist: {
    name: 'MNIST digits',
    url: 'models/mnist.anybit',
    samples: { images: 'fixtures/mnist-t100-images.idx3', labels: 'fixtures/mnist-t100-labels.idx1' },
  },
};

export const DEFAULT_MODEL = 'mnist';
